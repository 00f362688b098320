// libFuzzer target: everest::schema::Validator::compile on arbitrary JSON text.
//
// Text that Boost.JSON parses is compiled; compile either succeeds or throws an everest::Error
// with 22023 and a message that says where ("at the root" or "at /..."). Any other exception
// escapes and any crash or sanitizer report aborts: each is a bug. A schema that compiles then
// validates itself, to reach the validator with odd shapes too.
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

void Check(bool ok) {
  if (!ok) std::abort();
}

void CheckViolation(const everest::schema::Violation& v) {
  Check(v.pointer.empty() || v.pointer[0] == '/');
  Check(!v.keyword.empty() && !v.reason.empty() && v.reason.back() != '.');
  Check(v.reason.size() < 400);
  if (v.pointer.size() <= 200) Check(v.message == (v.pointer.empty() ? "(root)" : v.pointer) + ": " + v.reason);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 200;
  boost::json::value schema = boost::json::parse(text, ec, {}, options);
  if (ec) return 0;

  std::optional<everest::schema::Validator> validator;
  try {
    validator.emplace(everest::schema::Validator::compile(schema));
  } catch (const everest::Error& e) {
    Check(std::strcmp(e.sqlstate(), everest::sqlstate::invalid_parameter_value) == 0);
    const std::string message = e.what();
    Check(message.size() < 700);
    Check(message.find(" at the root") != std::string::npos || message.find(" at /") != std::string::npos);
    return 0;
  }
  // Compiled: it is a boolean or an object, and validating never throws but for std::bad_alloc.
  Check(schema.is_bool() || schema.is_object());
  std::optional<everest::schema::Violation> v = validator->validate(schema);
  if (v) CheckViolation(*v);
  std::optional<everest::schema::Violation> again = validator->validate(schema);
  Check(v.has_value() == again.has_value());
  if (v) Check(v->message == again->message);
  return 0;
}
