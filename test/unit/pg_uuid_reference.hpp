// A transcription of PostgreSQL's string_to_uuid (src/backend/utils/adt/uuid.c): the reference
// that everest::parse_uuid must agree with. Shared by the unit tests and the uuid fuzz target.
#pragma once

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "everest/core.hpp"

namespace everest_test {

inline int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return std::tolower(static_cast<unsigned char>(c)) - 'a' + 10;
}

inline std::optional<everest::Uuid> PostgresStringToUuid(std::string_view text) {
  // uuid_in reads a NUL-terminated string, so text with a NUL never reaches it whole; a parser
  // of counted strings must reject it.
  if (text.find('\0') != std::string_view::npos) return std::nullopt;
  std::string buf(text);
  const char* src = buf.c_str();
  bool braces = false;
  if (src[0] == '{') {
    src++;
    braces = true;
  }
  everest::Uuid out{};
  for (int i = 0; i < 16; i++) {
    if (src[0] == '\0' || src[1] == '\0') return std::nullopt;
    if (!std::isxdigit(static_cast<unsigned char>(src[0])) ||
        !std::isxdigit(static_cast<unsigned char>(src[1])))
      return std::nullopt;
    out[i] = static_cast<unsigned char>(HexDigit(src[0]) << 4 | HexDigit(src[1]));
    src += 2;
    if (src[0] == '-' && (i % 2) == 1 && i < 15) src++;
  }
  if (braces) {
    if (*src != '}') return std::nullopt;
    src++;
  }
  if (*src != '\0') return std::nullopt;
  return out;
}

}  // namespace everest_test
