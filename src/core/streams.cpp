// Stream names, expected versions and counts.
#include "everest/core.hpp"

#include <string>

namespace everest {

namespace {

void check_name_shape(std::string_view name) {
  if (name.empty())
    throw Error(sqlstate::invalid_parameter_value, "stream name must not be empty");
  if (name.size() > kMaxStreamNameBytes)
    throw Error(sqlstate::invalid_parameter_value,
                "stream name is too long",
                "The name has " + std::to_string(name.size()) + " bytes; the limit is " +
                    std::to_string(kMaxStreamNameBytes) + ".");
}

}  // namespace

StreamRef classify_stream_for_read(std::string_view name) {
  check_name_shape(name);
  if (name.front() != '$') return {StreamKind::regular, {}};
  if (name == kAllStream) return {StreamKind::all, {}};
  if (name.substr(0, kCategoryPrefix.size()) == kCategoryPrefix) {
    std::string_view category = name.substr(kCategoryPrefix.size());
    if (category.empty())
      throw Error(sqlstate::invalid_parameter_value, "category stream \"$ce-\" names no category",
                  {}, "Use \"$ce-<category>\", for example \"$ce-account\".");
    if (category.find('-') != std::string_view::npos)
      throw Error(sqlstate::invalid_parameter_value,
                  "category \"" + std::string(category) + "\" contains \"-\"",
                  "A stream's category is the part of its name before the first \"-\", so no category "
                  "contains one and this read could only ever be empty.",
                  "Read \"$ce-" + std::string(category_of(category)) + "\", or the stream \"" +
                      std::string(category) + "\" itself.");
    return {StreamKind::category, category};
  }
  if (name.substr(0, kTypePrefix.size()) == kTypePrefix) {
    std::string_view type = name.substr(kTypePrefix.size());
    if (type.empty())
      throw Error(sqlstate::invalid_parameter_value, "event type stream \"$et-\" names no type", {},
                  "Use \"$et-<type>\", for example \"$et-Deposited\".");
    return {StreamKind::type, type};
  }
  throw Error(sqlstate::invalid_parameter_value,
              "stream name \"" + std::string(name) + "\" is reserved",
              "Names beginning with \"$\" are reserved; the readable ones are \"$all\", "
              "\"$ce-<category>\" and \"$et-<type>\".");
}

void check_writable_stream(std::string_view name) {
  check_name_shape(name);
  if (name.front() == '$')
    throw Error(sqlstate::invalid_parameter_value,
                "cannot write to reserved stream \"" + std::string(name) + "\"",
                "Names beginning with \"$\" are reserved for the store.");
  if (name.front() == '-')
    throw Error(sqlstate::invalid_parameter_value,
                "stream name \"" + std::string(name) + "\" begins with \"-\"",
                "Its category (the part before the first \"-\") would be empty, and \"$ce-\" cannot "
                "name an empty category.",
                "Put the category first, for example \"account-42\".");
}

void check_not_tombstoned(std::string_view stream, bool tombstoned) {
  if (tombstoned)
    throw Error(sqlstate::stream_deleted, "stream \"" + std::string(stream) + "\" is deleted for good",
                "It was deleted with tombstone => true; its name cannot be used again.");
}

Error duplicate_id_error(std::string detail) {
  return Error(sqlstate::duplicate_event_id, "event id is already stored",
               detail.empty() ? "Another transaction stored it." : std::move(detail),
               "Retry a batch with exactly the same events and expected version, or use new ids.");
}

void check_event_type(std::string_view type) {
  if (type.empty()) throw Error(sqlstate::invalid_parameter_value, "event type must not be empty");
  if (type.size() > kMaxEventTypeBytes)
    throw Error(sqlstate::invalid_parameter_value, "event type is too long",
                "The type has " + std::to_string(type.size()) + " bytes; the limit is " +
                    std::to_string(kMaxEventTypeBytes) + ".");
}

void check_handler_name(std::string_view name) {
  if (name.empty())
    throw Error(sqlstate::invalid_parameter_value, "handler name must not be empty");
  if (name.size() > kMaxStreamNameBytes)
    throw Error(sqlstate::invalid_parameter_value, "handler name is too long",
                "The name has " + std::to_string(name.size()) + " bytes; the limit is " +
                    std::to_string(kMaxStreamNameBytes) + ", as for stream names.");
}

std::string_view category_of(std::string_view stream) {
  auto dash = stream.find('-');
  return dash == std::string_view::npos ? stream : stream.substr(0, dash);
}

void check_expected_version_value(std::int64_t expected) {
  if (expected == kExpectAny || expected == kExpectNoStream || expected == kExpectStreamExists ||
      expected >= 0)
    return;
  throw Error(sqlstate::invalid_parameter_value,
              "invalid expected_version " + std::to_string(expected), {},
              "Use -2 (any), -1 (no stream), -4 (stream exists) or an exact version >= 0.");
}

void check_expected_version(std::string_view stream, std::int64_t expected, std::int64_t actual) {
  bool ok = expected == kExpectAny || (expected == kExpectNoStream && actual == -1) ||
            (expected == kExpectStreamExists && actual >= 0) || (expected >= 0 && expected == actual);
  if (ok) return;
  std::string wanted = expected == kExpectNoStream       ? "-1 (no stream)"
                       : expected == kExpectStreamExists ? "-4 (stream exists)"
                                                         : std::to_string(expected);
  throw Error(sqlstate::wrong_expected_version,
              "wrong expected version for stream \"" + std::string(stream) + "\": expected " +
                  wanted + ", actual " + std::to_string(actual),
              {}, "Read the stream again and retry with its current version.");
}

void check_max_count(std::int64_t max_count) {
  if (max_count < 0)
    throw Error(sqlstate::invalid_parameter_value,
                "max_count must not be negative, got " + std::to_string(max_count));
}

}  // namespace everest
