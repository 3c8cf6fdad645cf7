// Surface area of the marching-cubes surface inside one 2×2×2 voxel neighbourhood ("surfel"), per 8-bit
// neighbour code. Bit ↔ neighbour (array-axis offsets): 128 (0,0,0), 64 (0,0,1), 32 (0,1,0), 16 (0,1,1),
// 8 (1,0,0), 4 (1,0,1), 2 (1,1,0), 1 (1,1,1).
#pragma once

#include <array>
#include <string>

#include "data/volume.hpp"

namespace e2e {

// Area (mm²) of every code's surfel at the given spacing (mm, array-axis order). Codes with more than four
// inside corners use their complement, as the reference does; codes 0 and 255 have no surface.
std::array<double, 256> surfel_area_table(const Spacing3& spacing);

// The classic marching-cubes triangle table (Lorensen & Cline 1987; Bourke/Bloyd's public-domain
// numbering: corner v has (x, y, z) bits as listed in marching_cubes_corner, edges as in
// marching_cubes_edge). Entry `case_index` lists its triangles' edges, three hexadecimal digits per triangle.
const std::string& marching_cubes_triangles(int case_index);
std::array<int, 3> marching_cubes_corner(int corner);
std::array<int, 2> marching_cubes_edge(int edge);

}  // namespace e2e
