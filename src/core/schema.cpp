// Event data schemas (DESIGN.md section 11, docs/schemas.md): a subset of JSON Schema compiled
// into a tree of Nodes, then checked against documents, first violation only.
#include "everest/schema.hpp"

#include <boost/json.hpp>
#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <limits>
#include <utility>

namespace everest::schema {

namespace json = boost::json;

namespace {

enum TypeBit : unsigned {
  kNull = 1,
  kBoolean = 2,
  kObject = 4,
  kArray = 8,
  kNumber = 16,
  kInteger = 32,
  kString = 64,
};

enum class Format { none, uuid, date_time };

// Values shown in messages are cut here (bytes, then "...").
constexpr std::size_t kShownValue = 64;
// Pointers shown in messages are cut here; the Violation keeps the whole pointer.
constexpr std::size_t kShownPointer = 200;
// The memory RE2 may use for one pattern (its program and its DFA caches), RE2's default: a
// pattern that needs more does not compile (22023; [\p{L}\p{N}]{1,200} fits, {1,500} does not);
// matching stays linear when a DFA cache fills.
constexpr std::int64_t kPatternMaxMem = 8 << 20;

const char* const kSupportedHint =
    "Supported keywords: type, properties, required, additionalProperties, items, enum, const, "
    "minimum, maximum, exclusiveMinimum, exclusiveMaximum, minLength, maxLength, minItems, maxItems, "
    "pattern, format (uuid, date-time); annotations title, description, $comment, $schema, default "
    "and examples are ignored.";

// At most `max` bytes of `s`, never cutting a UTF-8 character in two.
std::string_view utf8_prefix(std::string_view s, std::size_t max) {
  if (s.size() <= max) return s;
  std::size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) n--;
  return s.substr(0, n);
}

// `s` cut in the middle to about `max` bytes: its head, "...", its tail (a pointer's leaf, a
// number's last digits stay visible, and nothing ends with a period).
std::string shorten(const std::string& s, std::size_t max) {
  if (s.size() <= max) return s;
  std::string out(utf8_prefix(s, max * 2 / 3));
  std::size_t from = s.size() - max / 3;
  while (from < s.size() && (static_cast<unsigned char>(s[from]) & 0xC0) == 0x80) from++;
  out += "...";
  out.append(s, from, std::string::npos);
  return out;
}

// A JSON string literal of `s`, cut to about kShownValue bytes ("abc...").
std::string quote(std::string_view s) {
  std::string_view head = utf8_prefix(s, kShownValue);
  std::string out = json::serialize(json::string_view(head.data(), head.size()));
  if (head.size() < s.size()) out.insert(out.size() - 1, "...");
  return out;
}

// RFC 6901: "~" is "~0" and "/" is "~1" in a reference token.
void append_token(std::string& pointer, std::string_view key) {
  pointer += '/';
  for (char c : key) {
    if (c == '~') pointer += "~0";
    else if (c == '/') pointer += "~1";
    else pointer += c;
  }
}

std::string shown_pointer(const std::string& pointer) {
  return pointer.empty() ? "(root)" : shorten(pointer, kShownPointer);
}

std::string at(const std::string& pointer) {
  return pointer.empty() ? "at the root" : "at " + shorten(pointer, kShownPointer);
}

Number number_of(const json::value& v, const Document* doc) {
  if (doc) return doc->number(v);
  switch (v.kind()) {
    case json::kind::int64: return Number::from_int64(v.get_int64());
    case json::kind::uint64: return Number::from_uint64(v.get_uint64());
    case json::kind::double_: return Number::from_double(v.get_double());
    default: return Number();
  }
}

unsigned type_bit(std::string_view name) {
  static const std::pair<std::string_view, unsigned> kTypes[] = {
      {"null", kNull},     {"boolean", kBoolean}, {"object", kObject}, {"array", kArray},
      {"number", kNumber}, {"integer", kInteger}, {"string", kString}};
  for (const auto& [n, bit] : kTypes)
    if (n == name) return bit;
  return 0;
}

bool is_number(const json::value& v) { return v.is_int64() || v.is_uint64() || v.is_double(); }

// Appends a value as JSON to `out`, numbers exactly, strings cut; once `out` passes `limit` bytes
// it writes "..." and closes the open containers ([1,2,...]). Each level adds a byte, so the
// recursion is never deeper than `limit`. False when cut.
bool render_into(std::string& out, const json::value& v, const Document* doc, std::size_t limit) {
  switch (v.kind()) {
    case json::kind::null: out += "null"; break;
    case json::kind::bool_: out += v.get_bool() ? "true" : "false"; break;
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: out += shorten(number_of(v, doc).to_string(), kShownValue); break;
    case json::kind::string: {
      const json::string& s = v.get_string();
      out += quote(std::string_view(s.data(), s.size()));
      break;
    }
    case json::kind::array: {
      out += '[';
      bool first = true;
      for (const json::value& e : v.get_array()) {
        if (!first) out += ',';
        first = false;
        if (out.size() > limit) {
          out += "...]";
          return false;
        }
        if (!render_into(out, e, doc, limit)) {
          out += ']';
          return false;
        }
      }
      out += ']';
      break;
    }
    case json::kind::object: {
      out += '{';
      bool first = true;
      for (const json::key_value_pair& kv : v.get_object()) {
        if (!first) out += ',';
        first = false;
        if (out.size() > limit) {
          out += "...}";
          return false;
        }
        out += quote(std::string_view(kv.key().data(), kv.key().size()));
        out += ':';
        if (!render_into(out, kv.value(), doc, limit)) {
          out += '}';
          return false;
        }
      }
      out += '}';
      break;
    }
  }
  return true;
}

// A value as it appears in a message: JSON, cut to about kShownValue bytes.
std::string render(const json::value& v, const Document* doc) {
  std::string out;
  render_into(out, v, doc, kShownValue);
  return out;
}

const char* kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "boolean";
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_: return "number";
    case json::kind::string: return "string";
    case json::kind::array: return "array";
    case json::kind::object: return "object";
  }
  return "value";
}

// Deep JSON equality; numbers by value (1 equals 1.0). No recursion: data nests as it likes.
bool equal(const json::value& a, const Document* da, const json::value& b, const Document* db) {
  std::vector<std::pair<const json::value*, const json::value*>> todo{{&a, &b}};
  while (!todo.empty()) {
    auto [x, y] = todo.back();
    todo.pop_back();
    if (is_number(*x) && is_number(*y)) {
      if (x->is_int64() && y->is_int64()) {
        if (x->get_int64() != y->get_int64()) return false;
      } else if (!x->is_double() && !y->is_double()) {  // int64 and uint64
        const json::value& i = x->is_int64() ? *x : *y;
        const json::value& u = x->is_int64() ? *y : *x;
        if (i.is_int64() && (i.get_int64() < 0 || static_cast<std::uint64_t>(i.get_int64()) != u.get_uint64()))
          return false;
        if (!i.is_int64() && i.get_uint64() != u.get_uint64()) return false;
      } else if (number_of(*x, da).compare(number_of(*y, db)) != 0) {
        return false;
      }
      continue;
    }
    if (x->kind() != y->kind()) return false;
    switch (x->kind()) {
      case json::kind::bool_:
        if (x->get_bool() != y->get_bool()) return false;
        break;
      case json::kind::string:
        if (x->get_string() != y->get_string()) return false;
        break;
      case json::kind::array: {
        const json::array& xa = x->get_array();
        const json::array& ya = y->get_array();
        if (xa.size() != ya.size()) return false;
        for (std::size_t i = 0; i < xa.size(); i++) todo.emplace_back(&xa[i], &ya[i]);
        break;
      }
      case json::kind::object: {
        const json::object& xo = x->get_object();
        const json::object& yo = y->get_object();
        if (xo.size() != yo.size()) return false;
        for (const json::key_value_pair& kv : yo) {
          auto it = xo.find(kv.key());
          if (it == xo.end()) return false;
          todo.emplace_back(&it->value(), &kv.value());
        }
        break;
      }
      default: break;  // null
    }
  }
  return true;
}

std::uint64_t code_points(std::string_view s) {
  std::uint64_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

// RFC 4122's string form: 8-4-4-4-12 hex digits, either case.
bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (std::size_t i = 0; i < s.size(); i++) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!is_hex(s[i])) {
      return false;
    }
  }
  return true;
}

bool two_digits(std::string_view s, std::size_t pos, int& out) {
  if (pos + 2 > s.size() || s[pos] < '0' || s[pos] > '9' || s[pos + 1] < '0' || s[pos + 1] > '9') return false;
  out = (s[pos] - '0') * 10 + (s[pos + 1] - '0');
  return true;
}

// RFC 3339 date-time: 1985-04-12T23:20:50.52Z, 1996-12-19T16:39:57-08:00. "T" and "Z" in either
// case; a leap second (:60) only where it is 23:59 UTC.
bool is_date_time(std::string_view s) {
  int c1, c2, month, day, hour, minute, second;
  if (s.size() < 20 || !two_digits(s, 0, c1) || !two_digits(s, 2, c2) || s[4] != '-' ||
      !two_digits(s, 5, month) || s[7] != '-' || !two_digits(s, 8, day) || (s[10] != 'T' && s[10] != 't') ||
      !two_digits(s, 11, hour) || s[13] != ':' || !two_digits(s, 14, minute) || s[16] != ':' ||
      !two_digits(s, 17, second))
    return false;
  std::size_t i = 19;
  if (s[i] == '.') {
    i++;
    const std::size_t digits_from = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') i++;
    if (i == digits_from) return false;
  }
  int offset = 0;  // minutes east of UTC
  if (i < s.size() && (s[i] == 'Z' || s[i] == 'z')) {
    i++;
  } else if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!two_digits(s, i + 1, oh) || i + 3 >= s.size() || s[i + 3] != ':' || !two_digits(s, i + 4, om) ||
        oh > 23 || om > 59)
      return false;
    offset = (s[i] == '+' ? 1 : -1) * (oh * 60 + om);
    i += 6;
  } else {
    return false;
  }
  if (i != s.size()) return false;
  const int year = c1 * 100 + c2;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month < 1 || month > 12) return false;
  const bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
  const int days = kDays[month - 1] + (month == 2 && leap ? 1 : 0);
  if (day < 1 || day > days || hour > 23 || minute > 59 || second > 60) return false;
  if (second == 60) {
    const int utc = ((hour * 60 + minute - offset) % 1440 + 1440) % 1440;
    if (utc != 23 * 60 + 59) return false;
  }
  return true;
}

// jsonb's order of keys: shorter first, then bytewise.
int key_order(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
  return a.compare(b);
}

struct Bound {
  Number n;
  std::optional<std::int64_t> i64;  // n, when it is an int64: the fast path
  std::string shown;
};

}  // namespace

struct Validator::Node {
  enum class Kind { schema, always, never } kind = Kind::schema;  // never: the false schema
  unsigned types = 0;                                              // 0: any
  std::string type_names;                                          // "string or null"
  std::optional<Document> enum_values;                             // an array
  std::optional<Document> const_value;
  std::optional<Bound> minimum, exclusive_minimum, maximum, exclusive_maximum;
  std::optional<std::uint64_t> min_length, max_length, min_items, max_items;
  std::unique_ptr<re2::RE2> pattern;
  std::string pattern_shown;
  Format format = Format::none;
  std::vector<std::string> required;
  std::vector<std::pair<std::string, std::unique_ptr<Node>>> properties;  // in schema order
  std::unordered_map<std::string_view, std::size_t> property_index;        // names in properties
  std::unique_ptr<Node> additional;  // null: any value
  std::unique_ptr<Node> items;       // null: any value

  // For the StreamChecker, set once the node is compiled.
  struct Member {
    int property = -1;  // its index in properties
    int required = -1;  // its index in required
  };
  // Every name in properties or required, in jsonb's key order (shorter first, then bytewise), so
  // that an object's keys, which jsonb gives in that order, are mostly found at the place after
  // the previous one; else by binary search.
  std::vector<std::pair<std::string_view, Member>> members;
  std::size_t member(std::string_view key) const;  // its index in members, or members.size()
  bool captures = false;        // enum or const: a value is built whole, then checked
  bool reads_number = false;    // a number's value matters (bounds; integer but not number)
  bool reads_contents = false;  // a container's members matter, not only its kind
};

std::size_t Validator::Node::member(std::string_view key) const {
  auto it = std::lower_bound(members.begin(), members.end(), key,
                             [](const auto& m, std::string_view k) { return key_order(m.first, k) < 0; });
  return it != members.end() && it->first == key ? static_cast<std::size_t>(it - members.begin()) : members.size();
}

namespace {

using Node = Validator::Node;

[[noreturn]] void bad(const std::string& what, const std::string& pointer, std::string hint = {}) {
  throw Error(sqlstate::invalid_parameter_value, what + " " + at(pointer), {}, std::move(hint));
}

class Compiler {
 public:
  explicit Compiler(const Document* doc) : doc_(doc) {}

  std::unique_ptr<Node> compile(const json::value& s, const std::string& pointer, int depth) {
    if (depth > kMaxSchemaDepth)
      bad("the schema nests deeper than " + std::to_string(kMaxSchemaDepth) + " levels", pointer);
    auto node = std::make_unique<Node>();
    if (s.is_bool()) {
      node->kind = s.get_bool() ? Node::Kind::always : Node::Kind::never;
      return node;
    }
    if (!s.is_object()) bad(std::string("a schema must be an object or a boolean, not ") + kind_name(s), pointer);
    for (const json::key_value_pair& kv : s.get_object()) {
      const std::string_view key(kv.key().data(), kv.key().size());
      keyword(*node, key, kv.value(), pointer, depth);
    }
    std::unordered_map<std::string_view, Node::Member> members;
    for (std::size_t i = 0; i < node->properties.size(); i++) {
      node->property_index.emplace(node->properties[i].first, i);
      members[node->properties[i].first].property = static_cast<int>(i);
    }
    for (std::size_t i = 0; i < node->required.size(); i++) members[node->required[i]].required = static_cast<int>(i);
    node->members.assign(members.begin(), members.end());
    std::sort(node->members.begin(), node->members.end(),
              [](const auto& a, const auto& b) { return key_order(a.first, b.first) < 0; });
    node->captures = node->enum_values || node->const_value;
    node->reads_number = node->minimum || node->maximum || node->exclusive_minimum || node->exclusive_maximum ||
                         ((node->types & kInteger) && !(node->types & kNumber));
    node->reads_contents = node->captures || !node->properties.empty() || !node->required.empty() ||
                           node->additional || node->items || node->min_items || node->max_items;
    return node;
  }

 private:
  // A subschema under `keyword` (a boolean or an object).
  std::unique_ptr<Node> sub(std::string_view keyword, const json::value& v, const std::string& pointer,
                            std::string sub_pointer, int depth) {
    if (!v.is_bool() && !v.is_object())
      bad("\"" + std::string(keyword) + "\" must be a schema (an object or a boolean)", pointer);
    return compile(v, sub_pointer, depth + 1);
  }

  Bound bound(std::string_view keyword, const json::value& v, const std::string& pointer) {
    if (!is_number(v)) bad("\"" + std::string(keyword) + "\" must be a number", pointer);
    Bound b;
    b.n = number_of(v, doc_);
    b.i64 = b.n.to_int64();
    b.shown = shorten(b.n.to_string(), kShownValue);
    return b;
  }

  std::uint64_t count(std::string_view keyword, const json::value& v, const std::string& pointer) {
    if (!is_number(v)) bad("\"" + std::string(keyword) + "\" must be a non-negative integer", pointer);
    const Number n = number_of(v, doc_);
    if (!n.is_integer() || n.negative())
      bad("\"" + std::string(keyword) + "\" must be a non-negative integer", pointer);
    // Beyond 2^64-1 it is as good as no bound.
    return n.to_uint64().value_or(std::numeric_limits<std::uint64_t>::max());
  }

  Document copy(const json::value& v) { return doc_ ? doc_->copy(v) : Document(v); }

  void types(Node& node, const json::value& v, const std::string& pointer) {
    std::vector<std::string_view> names;
    if (v.is_string()) {
      names.emplace_back(v.get_string().data(), v.get_string().size());
    } else if (v.is_array()) {
      if (v.get_array().empty()) bad("\"type\" must not be an empty array", pointer);
      for (const json::value& e : v.get_array()) {
        if (!e.is_string()) bad("\"type\" must be a type name or an array of type names", pointer);
        names.emplace_back(e.get_string().data(), e.get_string().size());
      }
    } else {
      bad("\"type\" must be a type name or an array of type names", pointer);
    }
    for (std::size_t i = 0; i < names.size(); i++) {
      const std::string_view name = names[i];
      const unsigned bit = type_bit(name);
      if (!bit)
        bad("unknown type " + quote(name) + " in \"type\"", pointer,
            "The types are null, boolean, object, array, number, integer and string.");
      if (node.types & bit) bad("\"type\" lists " + quote(name) + " twice", pointer);
      node.types |= bit;
      if (i > 0) node.type_names += i + 1 == names.size() ? " or " : ", ";
      node.type_names += name;
    }
  }

  void keyword(Node& node, std::string_view key, const json::value& v, const std::string& pointer, int depth) {
    if (key == "type") {
      types(node, v, pointer);
    } else if (key == "properties") {
      if (!v.is_object()) bad("\"properties\" must be an object", pointer);
      for (const json::key_value_pair& kv : v.get_object()) {
        const std::string_view name(kv.key().data(), kv.key().size());
        std::string sub_pointer = pointer + "/properties";
        append_token(sub_pointer, name);
        if (!kv.value().is_bool() && !kv.value().is_object())
          bad("property " + quote(name) + " of \"properties\" must be a schema (an object or a boolean)", pointer);
        node.properties.emplace_back(std::string(name), compile(kv.value(), sub_pointer, depth + 1));
      }
    } else if (key == "required") {
      if (!v.is_array()) bad("\"required\" must be an array of strings", pointer);
      for (const json::value& e : v.get_array()) {
        if (!e.is_string()) bad("\"required\" must be an array of strings", pointer);
        std::string name(e.get_string().data(), e.get_string().size());
        if (std::find(node.required.begin(), node.required.end(), name) != node.required.end())
          bad("\"required\" lists " + quote(name) + " twice", pointer);
        node.required.push_back(std::move(name));
      }
    } else if (key == "additionalProperties") {
      node.additional = sub(key, v, pointer, pointer + "/additionalProperties", depth);
      if (node.additional->kind == Node::Kind::always) node.additional.reset();
    } else if (key == "items") {
      if (v.is_array())
        bad("\"items\" as an array (one schema per position) is not supported; give one schema for every item",
            pointer);
      node.items = sub(key, v, pointer, pointer + "/items", depth);
      if (node.items->kind == Node::Kind::always) node.items.reset();
    } else if (key == "enum") {
      if (!v.is_array()) bad("\"enum\" must be an array", pointer);
      node.enum_values = copy(v);
    } else if (key == "const") {
      node.const_value = copy(v);
    } else if (key == "minimum") {
      node.minimum = bound(key, v, pointer);
    } else if (key == "maximum") {
      node.maximum = bound(key, v, pointer);
    } else if (key == "exclusiveMinimum") {
      node.exclusive_minimum = bound(key, v, pointer);
    } else if (key == "exclusiveMaximum") {
      node.exclusive_maximum = bound(key, v, pointer);
    } else if (key == "minLength") {
      node.min_length = count(key, v, pointer);
    } else if (key == "maxLength") {
      node.max_length = count(key, v, pointer);
    } else if (key == "minItems") {
      node.min_items = count(key, v, pointer);
    } else if (key == "maxItems") {
      node.max_items = count(key, v, pointer);
    } else if (key == "pattern") {
      if (!v.is_string()) bad("\"pattern\" must be a string", pointer);
      const std::string_view text(v.get_string().data(), v.get_string().size());
      RE2::Options options;
      options.set_log_errors(false);
      options.set_max_mem(kPatternMaxMem);
      auto re = std::make_unique<re2::RE2>(re2::StringPiece(text.data(), text.size()), options);
      if (!re->ok())
        bad("\"pattern\" " + quote(text) + " is not a regular expression RE2 accepts (" +
                shorten(re->error(), kShownValue) + ")",
            pointer,
            "Patterns use RE2 syntax: no lookaround and no backreferences; \\x{hhhh} instead of \\uhhhh.");
      node.pattern = std::move(re);
      node.pattern_shown = quote(text);
    } else if (key == "format") {
      if (!v.is_string()) bad("\"format\" must be a string", pointer);
      const std::string_view name(v.get_string().data(), v.get_string().size());
      if (name == "uuid") node.format = Format::uuid;
      else if (name == "date-time") node.format = Format::date_time;
      else bad("unsupported format " + quote(name), pointer, "The supported formats are uuid and date-time.");
    } else if (key == "title" || key == "description" || key == "$comment" || key == "$schema" ||
               key == "default" || key == "examples") {
      // annotations: accepted, ignored
    } else {
      bad("unsupported keyword " + quote(key), pointer, kSupportedHint);
    }
  }

  const Document* doc_;
};

enum class StringRule { none, min_length, max_length, pattern, uuid, date_time };

// The first rule of `n` a string breaks, in the order of docs/schemas.md; `len` is its length in
// code points when a length rule was looked at.
StringRule string_rule(const Node& n, std::string_view s, std::uint64_t& len) {
  if (n.min_length || n.max_length) {
    len = code_points(s);
    if (n.min_length && len < *n.min_length) return StringRule::min_length;
    if (n.max_length && len > *n.max_length) return StringRule::max_length;
  }
  if (n.pattern && !RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), *n.pattern)) return StringRule::pattern;
  if (n.format == Format::uuid && !is_uuid(s)) return StringRule::uuid;
  if (n.format == Format::date_time && !is_date_time(s)) return StringRule::date_time;
  return StringRule::none;
}

// One validation: the path to the value being checked, and the first violation.
class Run {
 public:
  explicit Run(const Document* doc) : doc_(doc) {}

  bool check(const Node& n, const json::value& v) {
    if (n.kind == Node::Kind::always) return true;
    if (n.kind == Node::Kind::never) return fail("false", "no value is allowed here (the schema is false)");
    if (n.types && !has_type(n.types, v))
      return fail("type", "expected " + n.type_names + ", got " + kind_name(v));
    if (n.enum_values) {
      const json::array& values = n.enum_values->root().get_array();
      bool found = false;
      for (const json::value& e : values)
        if (equal(v, doc_, e, &*n.enum_values)) {
          found = true;
          break;
        }
      if (!found)
        return fail("enum", render(v, doc_) + " is not one of " + render(n.enum_values->root(), &*n.enum_values));
    }
    if (n.const_value && !equal(v, doc_, n.const_value->root(), &*n.const_value))
      return fail("const", render(v, doc_) + " is not equal to const " +
                               render(n.const_value->root(), &*n.const_value));
    switch (v.kind()) {
      case json::kind::int64:
      case json::kind::uint64:
      case json::kind::double_: return check_number(n, v);
      case json::kind::string: return check_string(n, v);
      case json::kind::array: return check_array(n, v);
      case json::kind::object: return check_object(n, v);
      default: return true;
    }
  }

  std::optional<Violation> result;

 private:
  struct Token {
    std::string_view key;
    std::size_t index;
    bool is_index;
  };

  bool fail(const char* keyword, std::string reason) {
    Violation out;
    for (const Token& t : path_) {
      if (t.is_index) out.pointer += "/" + std::to_string(t.index);
      else append_token(out.pointer, t.key);
    }
    out.keyword = keyword;
    out.reason = std::move(reason);
    out.message = shown_pointer(out.pointer) + ": " + out.reason;
    result = std::move(out);
    return false;
  }

  bool has_type(unsigned types, const json::value& v) const {
    switch (v.kind()) {
      case json::kind::null: return types & kNull;
      case json::kind::bool_: return types & kBoolean;
      case json::kind::string: return types & kString;
      case json::kind::array: return types & kArray;
      case json::kind::object: return types & kObject;
      case json::kind::int64:
      case json::kind::uint64: return types & (kNumber | kInteger);
      case json::kind::double_:
        if (types & kNumber) return true;
        return (types & kInteger) && number_of(v, doc_).is_integer();
    }
    return false;
  }

  int compare(const json::value& v, const Bound& b) const {
    if (b.i64) {
      if (v.is_int64()) return v.get_int64() < *b.i64 ? -1 : v.get_int64() > *b.i64 ? 1 : 0;
      if (v.is_uint64()) {
        if (*b.i64 < 0) return 1;
        const auto u = static_cast<std::uint64_t>(*b.i64);
        return v.get_uint64() < u ? -1 : v.get_uint64() > u ? 1 : 0;
      }
    }
    return number_of(v, doc_).compare(b.n);
  }

  bool check_number(const Node& n, const json::value& v) {
    if (n.minimum && compare(v, *n.minimum) < 0)
      return fail("minimum", render(v, doc_) + " is less than minimum " + n.minimum->shown);
    if (n.exclusive_minimum && compare(v, *n.exclusive_minimum) <= 0)
      return fail("exclusiveMinimum",
                  render(v, doc_) + " is not greater than exclusiveMinimum " + n.exclusive_minimum->shown);
    if (n.maximum && compare(v, *n.maximum) > 0)
      return fail("maximum", render(v, doc_) + " is greater than maximum " + n.maximum->shown);
    if (n.exclusive_maximum && compare(v, *n.exclusive_maximum) >= 0)
      return fail("exclusiveMaximum",
                  render(v, doc_) + " is not less than exclusiveMaximum " + n.exclusive_maximum->shown);
    return true;
  }

  static std::string plural(std::uint64_t n, const char* one, const char* many) {
    return std::to_string(n) + " " + (n == 1 ? one : many);
  }

  bool check_string(const Node& n, const json::value& v) {
    const json::string& js = v.get_string();
    const std::string_view s(js.data(), js.size());
    std::uint64_t len = 0;
    switch (string_rule(n, s, len)) {
      case StringRule::none: return true;
      case StringRule::min_length:
        return fail("minLength", render(v, doc_) + " has " + plural(len, "character", "characters") +
                                     ", fewer than minLength " + std::to_string(*n.min_length));
      case StringRule::max_length:
        return fail("maxLength", render(v, doc_) + " has " + plural(len, "character", "characters") +
                                     ", more than maxLength " + std::to_string(*n.max_length));
      case StringRule::pattern:
        return fail("pattern", render(v, doc_) + " does not match pattern " + n.pattern_shown);
      case StringRule::uuid: return fail("format", render(v, doc_) + " is not a valid uuid");
      case StringRule::date_time: return fail("format", render(v, doc_) + " is not a valid RFC 3339 date-time");
    }
    return true;
  }

  bool check_array(const Node& n, const json::value& v) {
    const json::array& a = v.get_array();
    if (n.min_items && a.size() < *n.min_items)
      return fail("minItems", "array has " + plural(a.size(), "item", "items") + ", fewer than minItems " +
                                  std::to_string(*n.min_items));
    if (n.max_items && a.size() > *n.max_items)
      return fail("maxItems", "array has " + plural(a.size(), "item", "items") + ", more than maxItems " +
                                  std::to_string(*n.max_items));
    if (n.items) {
      for (std::size_t i = 0; i < a.size(); i++) {
        path_.push_back(Token{{}, i, true});
        if (!check(*n.items, a[i])) return false;
        path_.pop_back();
      }
    }
    return true;
  }

  bool check_object(const Node& n, const json::value& v) {
    const json::object& o = v.get_object();
    for (const std::string& name : n.required) {
      if (!o.contains(json::string_view(name.data(), name.size()))) {
        path_.push_back(Token{name, 0, false});
        return fail("required", "required property is missing");
      }
    }
    for (const auto& [name, sub] : n.properties) {
      auto it = o.find(json::string_view(name.data(), name.size()));
      if (it == o.end()) continue;
      path_.push_back(Token{name, 0, false});
      if (!check(*sub, it->value())) return false;
      path_.pop_back();
    }
    if (n.additional) {
      for (const json::key_value_pair& kv : o) {
        const std::string_view key(kv.key().data(), kv.key().size());
        if (n.property_index.count(key)) continue;
        path_.push_back(Token{key, 0, false});
        if (n.additional->kind == Node::Kind::never)
          return fail("additionalProperties", "property is not allowed (additionalProperties is false)");
        if (!check(*n.additional, kv.value())) return false;
        path_.pop_back();
      }
    }
    return true;
  }

  const Document* doc_;
  std::vector<Token> path_;
};

}  // namespace

Validator::Validator(std::unique_ptr<Node> root) : root_(std::move(root)) {}
Validator::Validator(Validator&&) noexcept = default;
Validator& Validator::operator=(Validator&&) noexcept = default;
Validator::~Validator() = default;

Validator Validator::compile(const Document& schema) {
  return Validator(Compiler(&schema).compile(schema.root(), "", 1));
}

Validator Validator::compile(const json::value& schema) {
  return Validator(Compiler(nullptr).compile(schema, "", 1));
}

std::optional<Violation> Validator::validate(const Document& data) const {
  Run run(&data);
  run.check(*root_, data.root());
  return std::move(run.result);
}

std::optional<Violation> Validator::validate(const json::value& data) const {
  Run run(nullptr);
  run.check(*root_, data);
  return std::move(run.result);
}

// ---------------------------------------------------------------------------------------------
// StreamChecker: validate()'s rules applied as the tokens come, no Document built. A value under
// enum or const is the exception: it is built whole and checked by Run once complete (comparing
// needs all of it). Everything here only decides pass or fail; validate() words the violation.
// ---------------------------------------------------------------------------------------------

struct StreamChecker::Frame {
  const Node* node;               // the container's schema; nullptr: its members are not checked
  bool object;
  std::uint64_t items = 0;        // arrays: the items so far
  std::size_t seen_from = 0;      // objects: where its required flags start in seen_
  std::size_t next_member = 0;    // objects: where the next key is looked for first
};

namespace {

// Whether a number of `text` is an integer, and its exact value: int64 on the common path (a plain
// integer of at most 18 digits, as numeric_out writes one), else the exact decimal.
struct NumberToken {
  std::optional<std::int64_t> i;
  Number exact;

  explicit NumberToken(std::string_view text) {
    if (const std::size_t digits = text.size() - (!text.empty() && text[0] == '-');
        digits >= 1 && digits <= 18 && (digits == 1 || text[text.size() - digits] != '0')) {
      std::int64_t v = 0;
      auto res = std::from_chars(text.data(), text.data() + text.size(), v);
      if (res.ec == std::errc() && res.ptr == text.data() + text.size()) {
        i = v;
        return;
      }
    }
    exact = Number::parse(text);
  }
  bool is_integer() const { return i || exact.is_integer(); }
  int compare(const Bound& b) const {
    if (i && b.i64) return *i < *b.i64 ? -1 : *i > *b.i64 ? 1 : 0;
    return (i ? Number::from_int64(*i) : exact).compare(b.n);
  }
};

}  // namespace

StreamChecker::StreamChecker() = default;
StreamChecker::~StreamChecker() = default;

void StreamChecker::start(const Validator& v) {
  validator_ = &v;
  state_ = State::running;
  frames_.clear();
  seen_.clear();
  after_key_ = nullptr;
  have_key_ = false;
  capture_node_ = nullptr;
}

// The schema of the value the next token starts (nullptr: none applies, or a token out of order,
// which the token itself then fails on).
const Validator::Node* StreamChecker::next_node() const {
  if (frames_.empty()) return validator_->root_.get();
  const Frame& f = frames_.back();
  if (f.object) return have_key_ ? after_key_ : nullptr;
  return f.node ? f.node->items.get() : nullptr;
}

// At the first token of a value: false when the value fails at once; otherwise `node` is the
// schema to apply (nullptr: none). A node with enum or const is the token's to handle.
bool StreamChecker::begin_value(const Validator::Node*& node) {
  if (state_ != State::running) {
    state_ = State::failed;  // failed already, or a token after a complete value
    return false;
  }
  if (!frames_.empty() && frames_.back().object && !have_key_) {
    fail();  // a member without a key
    return false;
  }
  node = next_node();
  have_key_ = false;
  if (node && node->kind == Node::Kind::always) node = nullptr;
  if (node && node->kind == Node::Kind::never) {
    fail();
    return false;
  }
  return true;
}

// A value under enum or const that is a container or a number: built whole from here on, and
// checked by Run once complete.
void StreamChecker::start_capture(const Validator::Node* node) {
  if (!capture_) capture_ = std::make_unique<Builder>();
  capture_->reset();
  capture_node_ = node;
}

namespace {

// A string, boolean or null under enum or const: compared where it stands (no capture).
template <typename Same>
bool scalar_in_enum_and_const(const Node& n, Same same) {
  if (n.enum_values) {
    const json::array& values = n.enum_values->root().get_array();
    if (std::none_of(values.begin(), values.end(), same)) return false;
  }
  return !n.const_value || same(n.const_value->root());
}

}  // namespace

// A value is complete.
void StreamChecker::end_value() {
  if (frames_.empty()) state_ = State::done;
  else if (!frames_.back().object) frames_.back().items++;
}

void StreamChecker::finish_capture_token() {
  if (!capture_->complete()) return;
  const Node* node = capture_node_;
  capture_node_ = nullptr;
  Run run(&capture_->document());
  if (!run.check(*node, capture_->document().root())) return fail();
  end_value();
}

void StreamChecker::begin_object() {
  if (capture_node_) {
    capture_->begin_object();
    return;
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n && n->captures) {
    start_capture(n);
    return capture_->begin_object();
  }
  if (n && n->types && !(n->types & kObject)) return fail();
  if (frames_.size() >= kMaxJsonDepth) return fail();  // the Builder decides (54000)
  Frame f{n, true};
  if (n && !n->required.empty()) {
    f.seen_from = seen_.size();
    seen_.resize(seen_.size() + n->required.size(), 0);
  }
  frames_.push_back(f);
}

void StreamChecker::end_object() {
  if (capture_node_) {
    capture_->end_object();
    return finish_capture_token();
  }
  if (state_ != State::running || frames_.empty() || !frames_.back().object || have_key_) return fail();
  const Frame f = frames_.back();
  frames_.pop_back();
  if (f.node && !f.node->required.empty()) {
    for (std::size_t i = 0; i < f.node->required.size(); i++)
      if (!seen_[f.seen_from + i]) return fail();
    seen_.resize(f.seen_from);
  }
  end_value();
}

void StreamChecker::key(std::string_view key) {
  if (capture_node_) {
    capture_->key(key);
    return;
  }
  if (state_ != State::running || frames_.empty() || !frames_.back().object || have_key_) return fail();
  Frame& f = frames_.back();
  have_key_ = true;
  after_key_ = nullptr;
  if (!f.node) return;
  const Node& n = *f.node;
  std::size_t i = f.next_member;
  if (i >= n.members.size() || n.members[i].first != key) i = n.member(key);
  if (i < n.members.size()) {
    f.next_member = i + 1;
    const Node::Member& m = n.members[i].second;
    if (m.required >= 0) seen_[f.seen_from + m.required] = 1;
    if (m.property >= 0) {
      after_key_ = n.properties[m.property].second.get();
      return;
    }
  }
  after_key_ = n.additional.get();  // null: any value; the false schema fails at the value
}

void StreamChecker::begin_array() {
  if (capture_node_) {
    capture_->begin_array();
    return;
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n && n->captures) {
    start_capture(n);
    return capture_->begin_array();
  }
  if (n && n->types && !(n->types & kArray)) return fail();
  if (frames_.size() >= kMaxJsonDepth) return fail();
  frames_.push_back(Frame{n, false});
}

void StreamChecker::end_array() {
  if (capture_node_) {
    capture_->end_array();
    return finish_capture_token();
  }
  if (state_ != State::running || frames_.empty() || frames_.back().object) return fail();
  const Frame f = frames_.back();
  frames_.pop_back();
  if (f.node) {
    if (f.node->min_items && f.items < *f.node->min_items) return fail();
    if (f.node->max_items && f.items > *f.node->max_items) return fail();
  }
  end_value();
}

void StreamChecker::string(std::string_view s) {
  if (capture_node_) {
    capture_->string(s);
    return finish_capture_token();
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n) {
    if (n->types && !(n->types & kString)) return fail();
    if (n->captures && !scalar_in_enum_and_const(*n, [s](const json::value& e) {
          return e.is_string() && std::string_view(e.get_string().data(), e.get_string().size()) == s;
        }))
      return fail();
    std::uint64_t len = 0;
    if (string_rule(*n, s, len) != StringRule::none) return fail();
  }
  end_value();
}

void StreamChecker::number(std::string_view text) {
  if (capture_node_) {
    capture_->number(text);
    return finish_capture_token();
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n && n->captures) {
    start_capture(n);
    capture_->number(text);
    return finish_capture_token();
  }
  if (n && (n->types || n->reads_number)) {
    const NumberToken v(text);
    if (n->types && !(n->types & kNumber) && !((n->types & kInteger) && v.is_integer())) return fail();
    if (n->minimum && v.compare(*n->minimum) < 0) return fail();
    if (n->exclusive_minimum && v.compare(*n->exclusive_minimum) <= 0) return fail();
    if (n->maximum && v.compare(*n->maximum) > 0) return fail();
    if (n->exclusive_maximum && v.compare(*n->exclusive_maximum) >= 0) return fail();
  }
  end_value();
}

bool StreamChecker::wants_number_text() const {
  if (capture_node_) return true;
  if (state_ != State::running) return false;
  const Node* n = next_node();
  return n && n->kind == Node::Kind::schema && (n->captures || n->reads_number);
}

void StreamChecker::number_unread() {
  if (capture_node_) return give_up();  // a capture needs every number's text
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n) {
    if (n->captures || n->reads_number) return give_up();
    if (n->types && !(n->types & kNumber)) return fail();
  }
  end_value();
}

void StreamChecker::boolean(bool b) {
  if (capture_node_) {
    capture_->boolean(b);
    return finish_capture_token();
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n && n->types && !(n->types & kBoolean)) return fail();
  if (n && n->captures &&
      !scalar_in_enum_and_const(*n, [b](const json::value& e) { return e.is_bool() && e.get_bool() == b; }))
    return fail();
  end_value();
}

void StreamChecker::null() {
  if (capture_node_) {
    capture_->null();
    return finish_capture_token();
  }
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n && n->types && !(n->types & kNull)) return fail();
  if (n && n->captures && !scalar_in_enum_and_const(*n, [](const json::value& e) { return e.is_null(); }))
    return fail();
  end_value();
}

bool StreamChecker::wants_contents() const {
  if (capture_node_) return true;
  if (state_ != State::running) return false;
  const Node* n = next_node();
  return n && n->kind == Node::Kind::schema && n->reads_contents;
}

void StreamChecker::opaque(bool is_object) {
  if (capture_node_) return give_up();  // a capture needs the whole value
  const Node* n = nullptr;
  if (!begin_value(n)) return;
  if (n) {
    if (n->reads_contents) return give_up();
    if (n->types && !(n->types & (is_object ? kObject : kArray))) return fail();
  }
  end_value();
}

namespace {

void feed(StreamChecker& c, const json::value& v, const Document& doc, bool shortcuts) {
  switch (v.kind()) {
    case json::kind::null: return c.null();
    case json::kind::bool_: return c.boolean(v.get_bool());
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      if (shortcuts && !c.wants_number_text()) return c.number_unread();
      return c.number(doc.number(v).to_string());
    case json::kind::string: return c.string(std::string_view(v.get_string().data(), v.get_string().size()));
    case json::kind::array:
      if (shortcuts && !c.wants_contents()) return c.opaque(false);
      c.begin_array();
      for (const json::value& e : v.get_array()) feed(c, e, doc, shortcuts);
      return c.end_array();
    case json::kind::object:
      if (shortcuts && !c.wants_contents()) return c.opaque(true);
      c.begin_object();
      for (const json::key_value_pair& kv : v.get_object()) {
        c.key(std::string_view(kv.key().data(), kv.key().size()));
        feed(c, kv.value(), doc, shortcuts);
      }
      return c.end_object();
  }
}

}  // namespace

bool stream_check(StreamChecker& checker, const Validator& v, const Document& data, bool shortcuts) {
  checker.start(v);
  feed(checker, data.root(), data, shortcuts);
  return checker.passed();
}

}  // namespace everest::schema
