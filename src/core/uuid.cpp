// UUID text forms, as PostgreSQL's uuid_in accepts them.
#include "everest/core.hpp"

#include <algorithm>
#include <string>

namespace everest {

namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

[[noreturn]] void malformed(std::string_view text) {
  std::size_t n = std::min<std::size_t>(text.size(), 100);
  while (n < text.size() && n > 0 && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) n--;
  throw Error(sqlstate::invalid_text_representation,
              "invalid input syntax for type uuid: \"" + std::string(text.substr(0, n)) + "\"");
}

}  // namespace

// Accepts what uuid_in accepts: 32 hex digits, optionally inside braces, with an optional '-'
// after any group of four digits (so the canonical 8-4-4-4-12 form and the bare form).
Uuid parse_uuid(std::string_view text) {
  std::string_view s = text;
  bool braces = !s.empty() && s.front() == '{';
  if (braces) {
    if (s.size() < 2 || s.back() != '}') malformed(text);
    s = s.substr(1, s.size() - 2);
  }
  Uuid out{};
  std::size_t i = 0;
  for (std::size_t digit = 0; digit < 32; digit += 2) {
    if (i + 2 > s.size()) malformed(text);
    int hi = hex_value(s[i]), lo = hex_value(s[i + 1]);
    if (hi < 0 || lo < 0) malformed(text);
    out[digit / 2] = static_cast<std::uint8_t>(hi << 4 | lo);
    i += 2;
    if (s.size() > i && s[i] == '-' && digit % 4 == 2 && digit < 30) i++;
  }
  if (i != s.size()) malformed(text);
  return out;
}

std::string format_uuid(const Uuid& id) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (std::size_t i = 0; i < 16; i++) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(digits[id[i] >> 4]);
    out.push_back(digits[id[i] & 15]);
  }
  return out;
}

Uuid make_uuid_v4(const Uuid& random_bytes) {
  Uuid out = random_bytes;
  out[6] = static_cast<std::uint8_t>((out[6] & 0x0f) | 0x40);  // version 4
  out[8] = static_cast<std::uint8_t>((out[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return out;
}

Uuid make_uuid_v7(std::uint64_t unix_ms, const Uuid& random_bytes) {
  Uuid out = random_bytes;
  for (int i = 0; i < 6; i++) out[i] = static_cast<std::uint8_t>(unix_ms >> (8 * (5 - i)));
  out[6] = static_cast<std::uint8_t>((out[6] & 0x0f) | 0x70);  // version 7
  out[8] = static_cast<std::uint8_t>((out[8] & 0x3f) | 0x80);  // RFC 9562 variant
  return out;
}

}  // namespace everest
