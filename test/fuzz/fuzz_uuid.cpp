// libFuzzer target: everest::parse_uuid on arbitrary bytes, checked against a transcription of
// PostgreSQL's uuid_in (test/unit/pg_uuid_reference.hpp).
//
// parse_uuid must accept exactly what the reference accepts, with the same bytes, and reject
// everything else with 22P02; accepted UUIDs must survive a format/parse round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "../unit/pg_uuid_reference.hpp"
#include "everest/core.hpp"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::optional<everest::Uuid> parsed;
  try {
    parsed = everest::parse_uuid(text);
  } catch (const everest::Error& e) {
    Check(std::strcmp(e.sqlstate(), everest::sqlstate::invalid_text_representation) == 0);
  }
  Check(parsed == everest_test::PostgresStringToUuid(text));
  if (parsed) {
    std::string canonical = everest::format_uuid(*parsed);
    Check(canonical.size() == 36);
    Check(everest::parse_uuid(canonical) == *parsed);
  }
  return 0;
}
