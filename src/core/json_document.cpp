// JSON documents with exact numbers (include/everest/schema.hpp): Number, Document, Builder and
// the JSON text front end. The glue drives a Builder while it walks a jsonb; tests and fuzz targets
// go through parse_document, which drives the same Builder from Boost.JSON's parser.
#include "everest/schema.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <utility>

namespace everest::schema {

namespace json = boost::json;

namespace {

// Exponents saturate here; the sum with a fraction's length then never overflows an int64.
constexpr std::int64_t kExponentCap = 1000000000000000;  // 10^15

bool is_digit(char c) { return c >= '0' && c <= '9'; }

[[noreturn]] void bad_number(std::string_view text) {
  std::string shown(text.substr(0, 64));
  if (text.size() > 64) shown += "...";
  throw Error(sqlstate::invalid_text_representation, "invalid JSON number \"" + shown + "\"");
}

[[noreturn]] void misuse(const char* what) {
  throw Error(sqlstate::internal_error, std::string("json builder: ") + what);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Number
// ---------------------------------------------------------------------------------------------

Number Number::parse(std::string_view t) {
  Number r;
  std::size_t i = 0;
  const std::size_t n = t.size();
  bool negative = false;
  if (i < n && t[i] == '-') {
    negative = true;
    i++;
  }
  std::string digits;
  std::int64_t fraction = 0;
  if (i < n && t[i] == '0') {
    i++;
  } else if (i < n && is_digit(t[i])) {
    while (i < n && is_digit(t[i])) digits.push_back(t[i++]);
  } else {
    bad_number(t);
  }
  if (i < n && t[i] == '.') {
    i++;
    if (i >= n || !is_digit(t[i])) bad_number(t);
    while (i < n && is_digit(t[i])) {
      digits.push_back(t[i++]);
      fraction++;
    }
  }
  std::int64_t exponent = 0;
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    i++;
    bool exp_negative = false;
    if (i < n && (t[i] == '+' || t[i] == '-')) exp_negative = t[i++] == '-';
    if (i >= n || !is_digit(t[i])) bad_number(t);
    // Saturates far above the cap (no overflow); the cap applies to the final exponent below, so
    // that to_string() and parse() give back the same number at the cap too.
    while (i < n && is_digit(t[i])) {
      if (exponent < 10 * kExponentCap) exponent = exponent * 10 + (t[i] - '0');
      i++;
    }
    if (exp_negative) exponent = -exponent;
  }
  if (i != n) bad_number(t);

  const std::size_t lead = digits.find_first_not_of('0');
  if (lead == std::string::npos) return r;  // zero, whatever its sign
  const std::size_t last = digits.find_last_not_of('0');
  const std::size_t trailing = digits.size() - 1 - last;
  r.negative_ = negative;
  r.digits_ = digits.substr(lead, last + 1 - lead);
  r.exponent_ = std::clamp<std::int64_t>(exponent - fraction + static_cast<std::int64_t>(trailing), -kExponentCap,
                                         kExponentCap);
  return r;
}

Number Number::from_uint64(std::uint64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

Number Number::from_int64(std::int64_t v) {
  char buf[24];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

Number Number::from_double(double v) {
  if (std::isnan(v)) return Number();
  if (std::isinf(v)) {
    Number r;
    r.negative_ = v < 0;
    r.digits_ = "1";
    r.exponent_ = kExponentCap;
    return r;
  }
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, v);  // shortest round trip
  return parse(std::string_view(buf, static_cast<std::size_t>(res.ptr - buf)));
}

std::optional<std::uint64_t> Number::to_uint64() const {
  if (digits_.empty()) return 0;
  if (negative_ || exponent_ < 0 || static_cast<std::int64_t>(digits_.size()) + exponent_ > 20)
    return std::nullopt;
  std::uint64_t m = 0;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  auto push = [&](unsigned d) {
    if (m > (kMax - d) / 10) return false;
    m = m * 10 + d;
    return true;
  };
  for (char c : digits_)
    if (!push(static_cast<unsigned>(c - '0'))) return std::nullopt;
  for (std::int64_t z = 0; z < exponent_; z++)
    if (!push(0)) return std::nullopt;
  return m;
}

std::optional<std::int64_t> Number::to_int64() const {
  if (digits_.empty()) return 0;
  Number magnitude = *this;
  magnitude.negative_ = false;
  std::optional<std::uint64_t> m = magnitude.to_uint64();
  if (!m) return std::nullopt;
  constexpr std::uint64_t kLimit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (!negative_) {
    if (*m > kLimit) return std::nullopt;
    return static_cast<std::int64_t>(*m);
  }
  if (*m > kLimit + 1) return std::nullopt;
  if (*m == kLimit + 1) return std::numeric_limits<std::int64_t>::min();
  return -static_cast<std::int64_t>(*m);
}

int Number::compare(const Number& o) const {
  const int a_sign = digits_.empty() ? 0 : negative_ ? -1 : 1;
  const int b_sign = o.digits_.empty() ? 0 : o.negative_ ? -1 : 1;
  if (a_sign != b_sign) return a_sign < b_sign ? -1 : 1;
  if (a_sign == 0) return 0;
  // Same sign: compare magnitudes. The position of the leading digit decides first; then the
  // digits, where a prefix is smaller (no trailing zeros: 0.12 < 0.123).
  const std::int64_t a_lead = exponent_ + static_cast<std::int64_t>(digits_.size());
  const std::int64_t b_lead = o.exponent_ + static_cast<std::int64_t>(o.digits_.size());
  int magnitude;
  if (a_lead != b_lead) {
    magnitude = a_lead < b_lead ? -1 : 1;
  } else {
    const int c = digits_.compare(o.digits_);
    magnitude = c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  return a_sign * magnitude;
}

std::string Number::to_string() const {
  if (digits_.empty()) return "0";
  std::string s = negative_ ? "-" : "";
  const auto size = static_cast<std::int64_t>(digits_.size());
  if (exponent_ >= 0 && size + exponent_ <= 40) {
    s += digits_;
    s.append(static_cast<std::size_t>(exponent_), '0');
  } else if (exponent_ < 0 && -exponent_ < size) {
    s.append(digits_, 0, static_cast<std::size_t>(size + exponent_));
    s += '.';
    s.append(digits_, static_cast<std::size_t>(size + exponent_), std::string::npos);
  } else if (exponent_ < 0 && -exponent_ - size <= 6) {
    s += "0.";
    s.append(static_cast<std::size_t>(-exponent_ - size), '0');
    s += digits_;
  } else {
    s += digits_[0];
    if (size > 1) {
      s += '.';
      s.append(digits_, 1, std::string::npos);
    }
    const std::int64_t e = exponent_ + size - 1;
    s += e < 0 ? "e-" : "e+";
    s += std::to_string(e < 0 ? -e : e);
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Document
// ---------------------------------------------------------------------------------------------

Document::Document() : root_(std::make_unique<json::value>()) {}
Document::Document(json::value root) : root_(std::make_unique<json::value>(std::move(root))) {}
Document::Document(Document&&) noexcept = default;
Document& Document::operator=(Document&&) noexcept = default;
Document::~Document() = default;

Number Document::number(const json::value& v) const {
  switch (v.kind()) {
    case json::kind::int64: return Number::from_int64(v.get_int64());
    case json::kind::uint64: return Number::from_uint64(v.get_uint64());
    case json::kind::double_: {
      if (auto it = exact_.find(&v); it != exact_.end()) return it->second;
      return Number::from_double(v.get_double());
    }
    default: return Number();
  }
}

Document Document::copy(const json::value& node) const {
  Document out;
  *out.root_ = node;
  if (exact_.empty()) return out;
  // Walk both trees side by side (no recursion: the depth is the data's).
  std::vector<std::pair<const json::value*, const json::value*>> todo{{&node, out.root_.get()}};
  while (!todo.empty()) {
    auto [src, dst] = todo.back();
    todo.pop_back();
    if (src->is_double()) {
      if (auto it = exact_.find(src); it != exact_.end()) out.exact_.emplace(dst, it->second);
    } else if (src->is_array()) {
      const json::array& a = src->get_array();
      const json::array& b = dst->get_array();
      for (std::size_t i = 0; i < a.size(); i++) todo.emplace_back(&a[i], &b[i]);
    } else if (src->is_object()) {
      const json::object& b = dst->get_object();
      for (const json::key_value_pair& kv : src->get_object())
        if (auto it = b.find(kv.key()); it != b.end()) todo.emplace_back(&kv.value(), &it->value());
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Builder: values wait on a stack until their container ends, then move into it; a number's exact
// decimal is recorded once the number sits at its final address (inside a container's storage,
// which stays put when the container itself moves).
// ---------------------------------------------------------------------------------------------

// The builder's arena: allocation bumps a pointer through blocks it keeps; freeing is a no-op
// until rewind() makes every block free again at once. (Boost 1.81's monotonic_resource would do,
// but its release() crashes on this platform.) A block beyond kKeep bytes is let go at rewind, so
// that one huge event does not stay in memory. Freeing being a no-op, Boost.JSON is told so
// (is_deallocate_trivial): it then skips walking a value's tree to destroy it.
class BuilderArena final : public json::memory_resource {
 public:
  void rewind() noexcept {
    std::size_t kept = 0, i = 0;
    while (i < blocks_.size() && kept + blocks_[i].size <= kKeep) kept += blocks_[i++].size;
    if (i == 0) i = 1;  // always keep the first block
    if (i < blocks_.size()) blocks_.resize(i);
    cur_ = 0;
    used_ = 0;
  }

 private:
  static constexpr std::size_t kFirst = 4096, kKeep = 1 << 20;
  struct Block {
    std::unique_ptr<unsigned char[]> data;
    std::size_t size;
  };
  void* do_allocate(std::size_t n, std::size_t align) override {
    if (align > alignof(std::max_align_t)) throw std::bad_alloc();
    for (;;) {
      if (cur_ < blocks_.size()) {
        const std::size_t start = (used_ + align - 1) & ~(align - 1);
        if (start <= blocks_[cur_].size && n <= blocks_[cur_].size - start) {
          used_ = start + n;
          return blocks_[cur_].data.get() + start;
        }
        if (cur_ + 1 < blocks_.size()) {
          cur_++;
          used_ = 0;
          continue;
        }
      }
      const std::size_t size = std::max(n, blocks_.empty() ? kFirst : blocks_.back().size * 2);
      blocks_.push_back(Block{std::unique_ptr<unsigned char[]>(new unsigned char[size]), size});
      cur_ = blocks_.size() - 1;
      used_ = 0;
    }
  }
  void do_deallocate(void*, std::size_t, std::size_t) override {}
  bool do_is_equal(const json::memory_resource& other) const noexcept override { return this == &other; }
  std::vector<Block> blocks_;
  std::size_t cur_ = 0, used_ = 0;
};

}  // namespace everest::schema

template <>
struct boost::json::is_deallocate_trivial<everest::schema::BuilderArena> : std::true_type {};

namespace everest::schema {

struct Builder::Pending {
  std::string key;  // its key, in an object
  json::value value;
  std::optional<Number> exact;
};

struct Builder::Frame {
  bool object;
  std::size_t first;      // its first member in pending_
  std::string own_key;    // its own key in its parent object
  bool have_key = false;  // objects: key() was called for the next member
  std::string key;
};

Builder::Builder() : arena_(std::make_unique<BuilderArena>()), sp_(arena_.get()), doc_(json::value(sp_)) {}
Builder::~Builder() = default;

void Builder::reset() {
  pending_.clear();
  frames_.clear();
  doc_.exact_.clear();
  *doc_.root_ = nullptr;  // keeps the arena as its storage
  arena_->rewind();       // nothing built lives in it any more
  complete_ = false;
}

const Document& Builder::document() const {
  if (!complete_) misuse("the value is not complete");
  return doc_;
}

Document Builder::take() {
  if (!complete_) misuse("the value is not complete");
  Document out = doc_.copy(*doc_.root_);  // out of the arena, into the default storage
  reset();
  return out;
}

void Builder::place(json::value& slot, std::optional<Number>& exact) {
  if (exact) doc_.exact_[&slot] = std::move(*exact);
}

// Drops the exact numbers of a value about to be destroyed (a key's earlier value).
void Builder::forget(const json::value& v) {
  if (doc_.exact_.empty()) return;
  std::vector<const json::value*> todo{&v};
  while (!todo.empty()) {
    const json::value* p = todo.back();
    todo.pop_back();
    if (p->is_double()) doc_.exact_.erase(p);
    else if (p->is_array())
      for (const json::value& e : p->get_array()) todo.push_back(&e);
    else if (p->is_object())
      for (const json::key_value_pair& kv : p->get_object()) todo.push_back(&kv.value());
  }
}

// A complete value (scalar or container), for the current container or as the root.
void Builder::add(json::value v, std::optional<Number> exact) {
  if (complete_) misuse("a second value after the root value");
  if (frames_.empty()) {
    *doc_.root_ = std::move(v);
    place(*doc_.root_, exact);
    complete_ = true;
    return;
  }
  Frame& f = frames_.back();
  if (f.object) {
    if (!f.have_key) misuse("a value inside an object needs a key first");
    f.have_key = false;
    pending_.push_back(Pending{std::move(f.key), std::move(v), std::move(exact)});
    f.key.clear();
  } else {
    pending_.push_back(Pending{{}, std::move(v), std::move(exact)});
  }
}

void Builder::begin_object() {
  if (complete_) misuse("a second value after the root value");
  if (frames_.size() >= kMaxJsonDepth)
    throw Error(sqlstate::program_limit_exceeded,
                "a JSON value nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  std::string own_key;
  if (!frames_.empty() && frames_.back().object) {
    if (!frames_.back().have_key) misuse("a value inside an object needs a key first");
    frames_.back().have_key = false;
    own_key = std::move(frames_.back().key);
  }
  frames_.push_back(Frame{true, pending_.size(), std::move(own_key), false, {}});
}

void Builder::begin_array() {
  begin_object();
  frames_.back().object = false;
}

void Builder::key(std::string_view key) {
  if (frames_.empty() || !frames_.back().object) misuse("a key outside an object");
  Frame& f = frames_.back();
  if (f.have_key) misuse("two keys in a row");
  f.key.assign(key.data(), key.size());
  f.have_key = true;
}

void Builder::end_object() {
  if (frames_.empty() || !frames_.back().object) misuse("end_object without begin_object");
  if (frames_.back().have_key) misuse("a key without a value");
  const std::size_t first = frames_.back().first;
  json::object obj(sp_);
  obj.reserve(pending_.size() - first);  // no rehash below: members keep their addresses
  for (std::size_t i = first; i < pending_.size(); i++) {
    Pending& p = pending_[i];
    auto [it, fresh] = obj.emplace(p.key, nullptr);
    if (!fresh) forget(it->value());  // a repeated key: the last value wins, as in jsonb
    it->value() = std::move(p.value);
    place(it->value(), p.exact);
  }
  pending_.resize(first);
  // The frame goes first: the object belongs to the parent, under the frame's own key.
  std::string own_key = std::move(frames_.back().own_key);
  frames_.pop_back();
  if (!frames_.empty() && frames_.back().object) {
    frames_.back().key = std::move(own_key);
    frames_.back().have_key = true;
  }
  add(json::value(std::move(obj)), std::nullopt);
}

void Builder::end_array() {
  if (frames_.empty() || frames_.back().object) misuse("end_array without begin_array");
  const std::size_t first = frames_.back().first;
  json::array arr(sp_);
  arr.reserve(pending_.size() - first);  // no reallocation below
  for (std::size_t i = first; i < pending_.size(); i++) {
    arr.push_back(std::move(pending_[i].value));
    place(arr.back(), pending_[i].exact);
  }
  pending_.resize(first);
  std::string own_key = std::move(frames_.back().own_key);
  frames_.pop_back();
  if (!frames_.empty() && frames_.back().object) {
    frames_.back().key = std::move(own_key);
    frames_.back().have_key = true;
  }
  add(json::value(std::move(arr)), std::nullopt);
}

void Builder::string(std::string_view s) { add(json::value(json::string_view(s.data(), s.size()), sp_), std::nullopt); }

void Builder::boolean(bool b) { add(json::value(b, sp_), std::nullopt); }

void Builder::null() { add(json::value(nullptr, sp_), std::nullopt); }

void Builder::number(std::string_view text) {
  // The common case first: a plain integer of at most 18 digits (numeric_out writes no leading
  // zeros, no exponent) fits int64 as it is.
  if (const std::size_t digits = text.size() - (!text.empty() && text[0] == '-');
      digits >= 1 && digits <= 18 && (digits == 1 || text[text.size() - digits] != '0')) {
    std::int64_t i = 0;
    auto res = std::from_chars(text.data(), text.data() + text.size(), i);
    if (res.ec == std::errc() && res.ptr == text.data() + text.size())
      return add(json::value(i, sp_), std::nullopt);
  }
  Number n = Number::parse(text);
  if (std::optional<std::int64_t> i = n.to_int64()) return add(json::value(*i, sp_), std::nullopt);
  if (std::optional<std::uint64_t> u = n.to_uint64()) return add(json::value(*u, sp_), std::nullopt);
  // A double for readers of the plain value; the exact decimal beside it for the validator.
  double d = 0;
  auto res = std::from_chars(text.data(), text.data() + text.size(), d);
  if (res.ec == std::errc::result_out_of_range) {
    // Far too big or too small for a double: infinity or zero, with the sign.
    const Number one = Number::from_int64(n.negative() ? -1 : 1);
    const bool huge = n.negative() ? n.compare(one) < 0 : n.compare(one) > 0;
    d = huge ? std::numeric_limits<double>::infinity() : 0.0;
    if (n.negative()) d = -d;
  } else if (res.ec != std::errc() || res.ptr != text.data() + text.size()) {
    bad_number(text);
  }
  add(json::value(d, sp_), std::move(n));
}

// ---------------------------------------------------------------------------------------------
// JSON text
// ---------------------------------------------------------------------------------------------

namespace {

struct TextHandler {
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);

  Builder builder;
  std::string part;  // the pieces of a string, key or number split across buffers

  std::string_view whole(json::string_view s) {
    if (part.empty()) return std::string_view(s.data(), s.size());
    part.append(s.data(), s.size());
    return part;
  }
  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_array_begin(json::error_code&) { builder.begin_array(); return true; }
  bool on_array_end(std::size_t, json::error_code&) { builder.end_array(); return true; }
  bool on_object_begin(json::error_code&) { builder.begin_object(); return true; }
  bool on_object_end(std::size_t, json::error_code&) { builder.end_object(); return true; }
  bool on_string_part(json::string_view s, std::size_t, json::error_code&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool on_string(json::string_view s, std::size_t, json::error_code&) {
    builder.string(whole(s));
    part.clear();
    return true;
  }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code&) {
    builder.key(whole(s));
    part.clear();
    return true;
  }
  bool on_number_part(json::string_view s, json::error_code&) {
    part.append(s.data(), s.size());
    return true;
  }
  bool number(json::string_view s) {
    builder.number(whole(s));
    part.clear();
    return true;
  }
  bool on_int64(std::int64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_uint64(std::uint64_t, json::string_view s, json::error_code&) { return number(s); }
  bool on_double(double, json::string_view s, json::error_code&) { return number(s); }
  bool on_bool(bool b, json::error_code&) { builder.boolean(b); return true; }
  bool on_null(json::error_code&) { builder.null(); return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }
};

}  // namespace

Document parse_document(std::string_view text) {
  json::parse_options options;
  options.max_depth = kMaxJsonDepth;
  json::basic_parser<TextHandler> parser(options);
  json::error_code ec;
  const std::size_t n = parser.write_some(false, text.data(), text.size(), ec);
  if (ec == json::error::too_deep)
    throw Error(sqlstate::program_limit_exceeded,
                "a JSON value nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  if (ec) throw Error(sqlstate::invalid_text_representation, "invalid JSON", ec.message());
  if (n != text.size() || !parser.handler().builder.complete())
    throw Error(sqlstate::invalid_text_representation, "invalid JSON", "extra data after the value");
  return parser.handler().builder.take();
}

}  // namespace everest::schema
