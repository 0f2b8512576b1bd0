// Length-prefix rules for CTDB packets on a stream. Magic and version are checked
// by the TypeScript side; here only the u32 length decides where packets end.
#pragma once
#include <cstdint>
#include <string>

namespace ctdb::io {

enum class FramingMode {
  kClient,  // unix socket: smbd sends unpadded packets, any length >= header
  kPeer,    // TCP between daemons: senders always pad to 8
};

constexpr uint32_t kHeaderSize = 32;
constexpr uint32_t kPeerAlignment = 8;
constexpr uint32_t kDefaultMaxPacket = 64u << 20;

// Checked for every packet, so no strings here.
inline bool PacketLengthOk(uint32_t length, FramingMode mode, uint32_t max_length) {
  return length >= kHeaderSize && length <= max_length && (mode == FramingMode::kClient || length % kPeerAlignment == 0);
}

// Why a length that failed PacketLengthOk drops the connection. The TypeScript
// framer produces identical strings (the tests compare them).
std::string PacketLengthError(uint32_t length, FramingMode mode, uint32_t max_length);

}  // namespace ctdb::io
