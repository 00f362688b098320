// libFuzzer target: everest::parse_event_batch on arbitrary bytes.
//
// A batch is either accepted or rejected with an everest::Error carrying 22023 (shape) or 22P02
// (malformed JSON or UUID). Any other exception escapes and any crash, sanitizer report or broken
// invariant aborts: each is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "everest/core.hpp"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<everest::ParsedEvent> events;
  try {
    events = everest::parse_event_batch(text);
  } catch (const everest::Error& e) {
    Check(std::strcmp(e.sqlstate(), everest::sqlstate::invalid_parameter_value) == 0 ||
          std::strcmp(e.sqlstate(), everest::sqlstate::invalid_text_representation) == 0);
    Check(std::strlen(e.what()) > 0);
    return 0;
  }
  // Accepted: one or more events, each with a type; ids survive a format/parse round trip.
  Check(!events.empty());
  for (const everest::ParsedEvent& event : events) {
    Check(!event.type.empty());
    if (event.id) Check(everest::parse_uuid(everest::format_uuid(*event.id)) == *event.id);
  }
  return 0;
}
