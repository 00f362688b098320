// libFuzzer target: compile a schema, then validate a document against it.
//
// The input is "<schema JSON>\n<document JSON>" (split at the first newline), both read with
// everest::schema::parse_document (exact numbers, the Builder the glue drives). Compile either
// succeeds or throws 22023; validation never throws, is deterministic and reports well-formed,
// bounded violations, on the exact path and on the plain Boost.JSON one (numbers read from
// doubles), and the StreamChecker (the appends' fast path) accepts exactly what validate()
// accepts. Anything else aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

#include "everest/schema.hpp"

namespace {

using everest::schema::Document;
using everest::schema::Validator;
using everest::schema::Violation;

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckViolation(const Violation& v) {
  Check(v.pointer.empty() || v.pointer[0] == '/');
  Check(!v.keyword.empty() && !v.reason.empty() && v.reason.back() != '.');
  Check(v.reason.size() < 400);
  Check(v.message.size() < 700);
  if (v.pointer.size() <= 200) Check(v.message == (v.pointer.empty() ? "(root)" : v.pointer) + ": " + v.reason);
}

std::optional<Document> Parse(std::string_view text) {
  try {
    return everest::schema::parse_document(text);
  } catch (const everest::Error& e) {
    Check(std::strcmp(e.sqlstate(), everest::sqlstate::invalid_text_representation) == 0 ||
          std::strcmp(e.sqlstate(), everest::sqlstate::program_limit_exceeded) == 0);
    return std::nullopt;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  std::optional<Document> schema = Parse(input.substr(0, newline));
  if (!schema) return 0;
  std::optional<Validator> validator;
  try {
    validator.emplace(Validator::compile(*schema));
  } catch (const everest::Error& e) {
    Check(std::strcmp(e.sqlstate(), everest::sqlstate::invalid_parameter_value) == 0);
    return 0;
  }
  std::optional<Document> doc = Parse(input.substr(newline + 1));
  if (!doc) return 0;

  std::optional<Violation> v = validator->validate(*doc);
  if (v) CheckViolation(*v);
  std::optional<Violation> again = validator->validate(*doc);
  Check(v.has_value() == again.has_value());
  if (v) Check(v->pointer == again->pointer && v->message == again->message);

  // The appends' fast path accepts exactly what the validator accepts, walking every member or
  // taking its shortcuts (numbers unread, containers given by their kind).
  everest::schema::StreamChecker checker;
  Check(everest::schema::stream_check(checker, *validator, *doc, false) == !v);
  Check(everest::schema::stream_check(checker, *validator, *doc, true) == !v);

  // The plain path (numbers read from doubles) must not throw either.
  std::optional<Violation> plain = validator->validate(doc->root());
  if (plain) CheckViolation(*plain);
  return 0;
}
