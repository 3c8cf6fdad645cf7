// libFuzzer harness: the sweep's message codec (orchestrator/sweep_protocol.hpp). The first byte picks the
// message (its index in SweepMessage; 0xff: a framed message for unframe()), the rest are the bytes. Bad
// bytes must end in ProtocolError; a message that decodes must encode again into bytes that decode to the
// same encoding (nothing is lost or invented on the way).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "orchestrator/sweep_protocol.hpp"
#include "tests/fuzz/fuzz_util.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string bytes = e2e::fuzz::as_string(data + 1, size - 1);
  try {
    const e2e::SweepMessage message =
        data[0] == 0xff ? e2e::unframe(bytes)
                        : e2e::decode(e2e::kFirstMessageTag +
                                          static_cast<int>(data[0] % std::variant_size_v<e2e::SweepMessage>),
                                      bytes);
    const e2e::EncodedMessage once = e2e::encode(message);
    const e2e::EncodedMessage twice = e2e::encode(e2e::decode(once.tag, once.bytes));
    if (once.tag != twice.tag || once.bytes != twice.bytes) std::abort();
  } catch (const e2e::ProtocolError& error) {
    e2e::fuzz::rejected(error);
  }
  return 0;
}
