#!/usr/bin/env python3
"""Writes the NIfTI seed corpus (tests/fuzz/corpus/nifti/): tiny valid NIfTI-1/2 files of each stored type and
layout the reader handles, plus edge cases (truncated data, zero dims, scaling, big-endian, gzip). Standard
library only; the header layouts are those of nifti1.h and nifti2.h. Run from anywhere; rewrites the files."""
import gzip
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "nifti")
TYPES = {"uint8": (2, 8, "B"), "int16": (4, 16, "h"), "int32": (8, 32, "i"), "float32": (16, 32, "f"),
         "float64": (64, 64, "d"), "uint16": (512, 16, "H"), "int64": (1024, 64, "q")}


def nifti1(dims, dtype, values, endian="<", slope=0.0, inter=0.0, qform=1, sform=1, pixdim=(1.0, 2.0, 3.0)):
    code, bitpix, fmt = TYPES[dtype]
    dim = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    h = bytearray(348)
    struct.pack_into(endian + "i", h, 0, 348)
    struct.pack_into(endian + "8h", h, 40, *dim)
    struct.pack_into(endian + "hh", h, 70, code, bitpix)
    struct.pack_into(endian + "8f", h, 76, 1.0, *pixdim, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into(endian + "fff", h, 108, 352.0, slope, inter)
    h[123] = 2  # mm
    struct.pack_into(endian + "hh", h, 252, qform, sform)
    struct.pack_into(endian + "6f", h, 256, 0.0, 0.0, 0.0, 10.0, 20.0, 30.0)
    struct.pack_into(endian + "12f", h, 280, pixdim[0], 0, 0, 10, 0, pixdim[1], 0, 20, 0, 0, pixdim[2], 30)
    h[344:348] = b"n+1\0"
    return bytes(h) + b"\0" * 4 + struct.pack(endian + f"{len(values)}{fmt}", *values)


def nifti2(dims, dtype, values):
    code, bitpix, fmt = TYPES[dtype]
    dim = [len(dims)] + list(dims) + [1] * (7 - len(dims))
    h = bytearray(540)
    struct.pack_into("<i", h, 0, 540)
    h[4:12] = b"n+2\0\r\n\x1a\n"
    struct.pack_into("<hh", h, 12, code, bitpix)
    struct.pack_into("<8q", h, 16, *dim)
    struct.pack_into("<8d", h, 104, 1.0, 1.5, 1.5, 2.5, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<q", h, 168, 544)
    struct.pack_into("<ii", h, 344, 1, 0)
    struct.pack_into("<ii", h, 500, 2, 0)
    return bytes(h) + b"\0" * 4 + struct.pack(f"<{len(values)}{fmt}", *values)


def seeds():
    labels = [0, 1, 2, 1, 0, 0, 2, 1]
    yield "labels_uint8_2x2x2.nii", nifti1((2, 2, 2), "uint8", labels)
    yield "labels_int16_3x2x1.nii", nifti1((3, 2, 1), "int16", [0, 1, 300, 2, 0, 1])
    yield "image_float32_2x2x2.nii", nifti1((2, 2, 2), "float32", [0.5, -1.0, 3.25, 1e3, 0, 7, -2, 1])
    yield "image_float64_2x1x1.nii", nifti1((2, 1, 1), "float64", [1.5, -0.25])
    yield "image_uint16_scaled.nii", nifti1((2, 2, 1), "uint16", [0, 10, 20, 65535], slope=0.5, inter=-3.0)
    yield "image_int32_bigendian.nii", nifti1((2, 2, 1), "int32", [1, -1, 2, 3], endian=">")
    yield "image_int64_noqform.nii", nifti1((2, 1, 1), "int64", [5, 6], qform=0, sform=0)
    yield "image_4d_2ch_float32.nii", nifti1((2, 1, 1, 2), "float32", [1, 2, 3, 4])
    yield "labels_nonintegral.nii", nifti1((2, 1, 1), "float32", [0.0, 1.5])
    yield "nifti2_int16_2x2x1.nii", nifti2((2, 2, 1), "int16", [0, 1, 2, 3])
    yield "truncated_data.nii", nifti1((4, 4, 4), "float32", [1.0] * 4)
    yield "zero_dim.nii", nifti1((2, 0, 2), "uint8", [])
    yield "header_only.nii", nifti1((2, 2, 2), "uint8", [])[:348]
    yield "gzip_uint8_2x2x2.nii.gz", gzip.compress(nifti1((2, 2, 2), "uint8", labels), mtime=0)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
