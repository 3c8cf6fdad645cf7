#include "model/topology.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

#include "model/dsff.hpp"
#include "test_util.hpp"

namespace e2e {
namespace {

Topology pattern_topology() {
  Topology t;
  TensorMask a("x0_1.up", 3, 5);
  for (int64_t k = 0; k < a.size(); k += 2) a.set(k, true);
  TensorMask b("x0_1.conv0", 70, 3);  // 210 bits: crosses 64-bit words, ends mid-word
  for (int64_t k = 0; k < b.size(); k += 3) b.set(k, true);
  t.tensors = {a, b};
  return t;
}

TEST(Topology, SerializeRoundTrip) {
  const Topology t = pattern_topology();
  const std::string bytes = t.serialize();
  EXPECT_EQ(Topology::deserialize(bytes), t);
  EXPECT_EQ(t.active(), 8 + 70);
  EXPECT_EQ(t.total(), 15 + 210);
  // Bit-packed: 15 bits in 2 bytes, 210 bits in 27 bytes.
  EXPECT_EQ(bytes.size(), 4u + 8 + 8 + (8 + 7 + 16 + 2) + (8 + 10 + 16 + 27));
}

TEST(Topology, RoundTripOfAnInitialisedNetwork) {
  E2ENet net(test::tiny_model());
  Dsff dsff(net->masked_layers(), DsffOptions{});
  dsff.initialize();
  const Topology t = dsff.topology();
  EXPECT_EQ(Topology::deserialize(t.serialize()), t);
}

TEST(Topology, HashIsStableAcrossRunsAndMachines) {
  // Golden values: any change to the format, the hash or the seeded initialisation shows up here.
  EXPECT_EQ(pattern_topology().hash_hex(), pattern_topology().hash_hex());
  EXPECT_EQ(pattern_topology().hash_hex(), "1bef1f7a3508f6ec");
  E2ENet net(test::tiny_model());
  DsffOptions o;
  o.sparsity = 0.5;
  o.seed = 1234;
  Dsff dsff(net->masked_layers(), o);
  dsff.initialize();
  EXPECT_EQ(dsff.topology().hash_hex(), "3c3f3340d623d08c");
}

TEST(Topology, HashChangesWithOneBit) {
  Topology t = pattern_topology();
  const uint64_t h = t.hash();
  t.tensors[1].set(1, true);
  EXPECT_NE(t.hash(), h);
}

TEST(Topology, MalformedBlobsAreRejected) {
  const std::string bytes = pattern_topology().serialize();
  EXPECT_THROW(Topology::deserialize(bytes.substr(0, bytes.size() - 1)), std::invalid_argument);
  EXPECT_THROW(Topology::deserialize(bytes + "x"), std::invalid_argument);
  EXPECT_THROW(Topology::deserialize("XXXX" + bytes.substr(4)), std::invalid_argument);
  EXPECT_THROW(Topology::deserialize(""), std::invalid_argument);
  std::string stray = bytes;
  stray.back() = static_cast<char>(0xff);  // bits beyond the 210th
  EXPECT_THROW(Topology::deserialize(stray), std::invalid_argument);
}

}  // namespace
}  // namespace e2e
