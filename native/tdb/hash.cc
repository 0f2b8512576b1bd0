// The two built-in tdb hash functions. Written from their published definitions:
// the gdbm-derived "old" hash and Bob Jenkins' lookup3 hashlittle() with initval 0.
#include <cstring>

#include "tdb/format.h"

namespace ctdb::tdb {

uint32_t OldHash(const uint8_t* data, size_t len) {
  uint32_t value = 0x238F13AFu * static_cast<uint32_t>(len);
  for (size_t i = 0; i < len; i++) value += static_cast<uint32_t>(data[i]) << ((i * 5) % 24);
  return 1103515243u * value + 12345u;
}

namespace {

constexpr uint32_t Rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

inline void Mix(uint32_t& a, uint32_t& b, uint32_t& c) {
  a -= c; a ^= Rotl(c, 4);  c += b;
  b -= a; b ^= Rotl(a, 6);  a += c;
  c -= b; c ^= Rotl(b, 8);  b += a;
  a -= c; a ^= Rotl(c, 16); c += b;
  b -= a; b ^= Rotl(a, 19); a += c;
  c -= b; c ^= Rotl(b, 4);  b += a;
}

inline void Final(uint32_t& a, uint32_t& b, uint32_t& c) {
  c ^= b; c -= Rotl(b, 14);
  a ^= c; a -= Rotl(c, 11);
  b ^= a; b -= Rotl(a, 25);
  c ^= b; c -= Rotl(b, 16);
  a ^= c; a -= Rotl(c, 4);
  b ^= a; b -= Rotl(a, 14);
  c ^= b; c -= Rotl(b, 24);
}

// Little-endian word made of up to 4 bytes; missing bytes count as zero.
inline uint32_t LoadLe(const uint8_t* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n && i < 4; i++) v |= static_cast<uint32_t>(p[i]) << (8 * i);
  return v;
}

}  // namespace

uint32_t JenkinsHash(const uint8_t* data, size_t len) {
  uint32_t a, b, c;
  a = b = c = 0xDEADBEEFu + static_cast<uint32_t>(len);
  while (len > 12) {
    a += LoadLe(data, 4);
    b += LoadLe(data + 4, 4);
    c += LoadLe(data + 8, 4);
    Mix(a, b, c);
    len -= 12;
    data += 12;
  }
  if (len == 0) return c;  // lookup3 skips the final mix for an empty tail
  a += LoadLe(data, len);
  if (len > 4) b += LoadLe(data + 4, len - 4);
  if (len > 8) c += LoadLe(data + 8, len - 8);
  Final(a, b, c);
  return c;
}

void HeaderHashes(HashKind kind, uint32_t* magic1, uint32_t* magic2) {
  static const uint8_t kFood[10] = {'T', 'D', 'B', ' ', 'f', 'i', 'l', 'e', '\n', 0};
  uint8_t magic_bytes[4];
  std::memcpy(magic_bytes, &kUsedMagic, 4);
  *magic1 = HashKey(kind, kFood, sizeof(kFood));
  *magic2 = HashKey(kind, magic_bytes, sizeof(magic_bytes));
  if (*magic1 == 0 && *magic2 == 0) *magic1 = 1;
}

}  // namespace ctdb::tdb
