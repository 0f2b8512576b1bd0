#include "io/framing.h"

namespace ctdb::io {

std::string PacketLengthError(uint32_t length, FramingMode mode, uint32_t max_length) {
  const std::string prefix = "packet length " + std::to_string(length);
  if (length < kHeaderSize) return prefix + " below header size " + std::to_string(kHeaderSize);
  if (mode == FramingMode::kPeer && length % kPeerAlignment != 0) {
    return prefix + " not a multiple of " + std::to_string(kPeerAlignment) + " on a peer connection";
  }
  return prefix + " above maximum " + std::to_string(max_length);
}

}  // namespace ctdb::io
