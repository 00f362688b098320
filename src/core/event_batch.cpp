// Event batch validation (DESIGN.md section 2, Append): one validator, two front ends
// (jsonb from the glue, JSON text through Boost.JSON here).
#include "everest/core.hpp"

#include <boost/json.hpp>

#include <string>

namespace everest {

namespace {

enum Key : unsigned { kType = 1, kData = 2, kMetadata = 4, kId = 8 };

const char* kind_name(JsonKind kind) {
  switch (kind) {
    case JsonKind::null: return "null";
    case JsonKind::boolean: return "a boolean";
    case JsonKind::number: return "a number";
    case JsonKind::string: return "a string";
    case JsonKind::array: return "an array";
    case JsonKind::object: return "an object";
  }
  return "a value";
}

}  // namespace

void EventBatchValidator::fail(const std::string& what) const {
  throw Error(sqlstate::invalid_parameter_value,
              "invalid event at index " + std::to_string(events_.size() - (in_event_ ? 1 : 0)) +
                  ": " + what,
              {}, "Each event is an object with \"type\" (required), \"data\", \"metadata\" and \"id\".");
}

void EventBatchValidator::begin_event(bool is_object) {
  in_event_ = true;
  seen_ = 0;
  events_.emplace_back();
  if (!is_object) fail("an event must be a JSON object");
}

void EventBatchValidator::field(std::string_view key, JsonKind kind, std::string_view text) {
  ParsedEvent& event = events_.back();
  unsigned bit;
  if (key == "type") bit = kType;
  else if (key == "data") bit = kData;
  else if (key == "metadata") bit = kMetadata;
  else if (key == "id") bit = kId;
  else fail("unknown key \"" + std::string(key) + "\"");
  if (seen_ & bit) fail("duplicate key \"" + std::string(key) + "\"");
  seen_ |= bit;

  switch (bit) {
    case kType:
      if (kind != JsonKind::string) fail(std::string("\"type\" must be a string, not ") + kind_name(kind));
      if (text.empty()) fail("\"type\" must not be empty");
      if (text.size() > kMaxEventTypeBytes)
        fail("\"type\" is too long (" + std::to_string(text.size()) + " bytes; the limit is " +
             std::to_string(kMaxEventTypeBytes) + ")");
      event.type.assign(text);
      break;
    case kData:
      break;  // any JSON
    case kMetadata:
      if (kind != JsonKind::object && kind != JsonKind::null)
        fail(std::string("\"metadata\" must be an object or null, not ") + kind_name(kind));
      event.has_metadata = kind == JsonKind::object;
      break;
    case kId:
      if (kind != JsonKind::string) fail(std::string("\"id\" must be a UUID string, not ") + kind_name(kind));
      try {
        event.id = parse_uuid(text);
      } catch (const Error& e) {
        throw Error(e.sqlstate(), "invalid event at index " + std::to_string(events_.size() - 1) +
                                      ": " + e.what());
      }
      if (auto [at, fresh] = ids_.emplace(*event.id, events_.size() - 1); !fresh)
        fail("\"id\" repeats the id of event " + std::to_string(at->second) + " of this batch");
      break;
  }
}

void EventBatchValidator::end_event() {
  if (!(seen_ & kType)) fail("\"type\" is required");
  in_event_ = false;
}

const std::vector<ParsedEvent>& EventBatchValidator::finish() const {
  if (events_.empty())
    throw Error(sqlstate::invalid_parameter_value, "events must be a non-empty JSON array", {},
                "Pass at least one event, e.g. '[{\"type\": \"Opened\"}]'.");
  return events_;
}

std::vector<ParsedEvent> parse_event_batch(std::string_view json_text) {
  boost::json::error_code ec;
  boost::json::parse_options options;
  options.max_depth = 10000;  // jsonb accepts deep data too
  boost::json::value root = boost::json::parse(json_text, ec, {}, options);
  if (ec)
    throw Error(sqlstate::invalid_text_representation, "events are not valid JSON", ec.message());
  if (!root.is_array())
    throw Error(sqlstate::invalid_parameter_value, "events must be a non-empty JSON array");

  EventBatchValidator validator;
  for (const boost::json::value& element : root.get_array()) {
    validator.begin_event(element.is_object());
    for (const auto& kv : element.get_object()) {
      const boost::json::value& v = kv.value();
      JsonKind kind = v.is_null()     ? JsonKind::null
                      : v.is_bool()   ? JsonKind::boolean
                      : v.is_string() ? JsonKind::string
                      : v.is_array()  ? JsonKind::array
                      : v.is_object() ? JsonKind::object
                                      : JsonKind::number;
      std::string_view text;
      if (v.is_string()) text = std::string_view(v.get_string().data(), v.get_string().size());
      validator.field(std::string_view(kv.key().data(), kv.key().size()), kind, text);
    }
    validator.end_event();
  }
  return validator.finish();
}

}  // namespace everest
