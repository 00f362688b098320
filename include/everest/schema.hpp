// everest core: event data schemas (DESIGN.md section 11, docs/schemas.md).
//
// A documented subset of JSON Schema, compiled once into an immutable Validator that checks many
// documents and reports the first violation as a JSON pointer and a message. Numbers are compared
// exactly: a Document keeps the exact decimal of every number that is neither an int64 nor a
// uint64, so big integers and long decimals from jsonb (numeric) are never rounded to a double
// before a comparison.
#pragma once

#include "everest/cpp_only.hpp"
#include "everest/core.hpp"

#include <boost/json/value.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace everest::schema {

// Documents (and schemas) nest at most this deep (54000 beyond): recursion stays small, and event
// data deeper than this is not something a schema should have to see.
inline constexpr std::size_t kMaxJsonDepth = 1000;
// Schemas nest at most this deep (22023 beyond): a level is a subschema under properties, items or
// additionalProperties; the root schema is level 1.
inline constexpr int kMaxSchemaDepth = 64;

// An exact decimal number: sign, significant digits and a power of ten. Zero has no sign, so -0
// equals 0, and 1, 1.0 and 1e0 are the same number.
class Number {
 public:
  Number() = default;  // zero
  // JSON's number grammar (which PostgreSQL's numeric output follows). Throws 22P02 otherwise.
  // Exponents beyond +-10^15 saturate: such numbers are beyond any jsonb numeric anyway.
  static Number parse(std::string_view text);
  static Number from_int64(std::int64_t v);
  static Number from_uint64(std::uint64_t v);
  // A double is read as its shortest round-trip decimal (0.1 is 0.1, not 0.1000000000000000055...),
  // which is what a JSON text that produced it said. NaN reads as 0, infinities as +-1e(10^15).
  static Number from_double(double v);

  bool is_zero() const { return digits_.empty(); }
  bool negative() const { return negative_; }
  bool is_integer() const { return digits_.empty() || exponent_ >= 0; }
  std::optional<std::int64_t> to_int64() const;
  std::optional<std::uint64_t> to_uint64() const;
  // -1, 0 or 1; exact, in time linear in the digits.
  int compare(const Number& other) const;
  // Plain decimal when short enough ("0.5", "-12", "18446744073709551617"), otherwise
  // scientific ("1.5e+400").
  std::string to_string() const;

 private:
  bool negative_ = false;
  std::string digits_;         // no leading or trailing zeros; empty for zero
  std::int64_t exponent_ = 0;  // the value is digits_ * 10^exponent_
};

// A JSON value and the exact decimal of each of its numbers that is stored as a double (the
// numbers that are neither int64 nor uint64). Move-only: the exact numbers are keyed by node.
class Document {
 public:
  Document();  // null
  // A plain Boost.JSON value: its doubles read as Number::from_double.
  explicit Document(boost::json::value root);
  Document(Document&&) noexcept;
  Document& operator=(Document&&) noexcept;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;
  ~Document();

  const boost::json::value& root() const { return *root_; }
  // The exact value of a number node of this document (or of any number, read plainly).
  Number number(const boost::json::value& v) const;
  // A deep copy of a node of this document, keeping its exact numbers.
  Document copy(const boost::json::value& node) const;

 private:
  friend class Builder;
  std::unique_ptr<boost::json::value> root_;
  std::unordered_map<const boost::json::value*, Number> exact_;
};

// Builds a Document from events, the way the glue walks a jsonb (no text round trip): numbers come
// as decimal text (numeric_out), kept exactly. An integer that fits int64 (or uint64) is stored as
// one, even when written "1.0"; any other number as a double plus its exact decimal. A key given
// twice in one object keeps its last value (as jsonb does). Misuse (a value without a key inside
// an object, an unbalanced end, a second root) is XX000; nesting beyond kMaxJsonDepth is 54000;
// malformed number text is 22P02.
class BuilderArena;  // src/core/json_document.cpp

class Builder {
 public:
  Builder();
  ~Builder();
  Builder(const Builder&) = delete;
  Builder& operator=(const Builder&) = delete;

  void begin_object();
  void end_object();
  void key(std::string_view key);
  void begin_array();
  void end_array();
  void string(std::string_view s);
  void number(std::string_view decimal_text);
  void boolean(bool b);
  void null();

  // One complete value was built.
  bool complete() const { return complete_; }
  // The value built; XX000 unless complete().
  const Document& document() const;
  // Takes the value built and starts over.
  Document take();
  // Starts over, keeping allocated buffers.
  void reset();

 private:
  struct Pending;
  struct Frame;
  void add(boost::json::value v, std::optional<Number> exact);
  void place(boost::json::value& slot, std::optional<Number>& exact);
  void forget(const boost::json::value& v);
  // The values being built live in an arena that reset() empties at once (one event's data after
  // another: no allocation per node once it has grown); take() copies the value out of it.
  // Declared first, so that it is destroyed last.
  std::unique_ptr<BuilderArena> arena_;
  boost::json::storage_ptr sp_;
  std::vector<Pending> pending_;
  std::vector<Frame> frames_;
  Document doc_;
  bool complete_ = false;
};

// JSON text to a Document with exact numbers (the Builder behind Boost.JSON's parser).
// Malformed JSON is 22P02, nesting beyond kMaxJsonDepth 54000.
Document parse_document(std::string_view text);

// The first violation of a schema by a document.
struct Violation {
  std::string pointer;  // RFC 6901 JSON pointer of the value at fault ("" is the whole document)
  std::string keyword;  // the rule: "type", "minimum", ..., "false" for a false schema
  std::string reason;   // "0 is less than minimum 1": lower case, no trailing period, bounded
  std::string message;  // "<pointer>: <reason>", "(root): <reason>" for the whole document
};

// A compiled schema: immutable, so one instance may validate any number of documents, from any
// number of threads at once. Move-only.
class Validator {
 public:
  // Throws 22023 naming the problem and where (a JSON pointer into the schema): an unsupported
  // keyword, a keyword with a malformed value, a pattern RE2 rejects, an unknown format, nesting
  // beyond kMaxSchemaDepth, or a schema that is neither an object nor a boolean.
  static Validator compile(const Document& schema);
  static Validator compile(const boost::json::value& schema);

  Validator(Validator&&) noexcept;
  Validator& operator=(Validator&&) noexcept;
  ~Validator();

  // The first violation in the order docs/schemas.md gives, or nothing. Never throws, but for
  // std::bad_alloc.
  std::optional<Violation> validate(const Document& data) const;
  std::optional<Violation> validate(const boost::json::value& data) const;  // doubles read plainly

  struct Node;  // one compiled (sub)schema

 private:
  friend class StreamChecker;
  explicit Validator(std::unique_ptr<Node> root);
  std::unique_ptr<Node> root_;
};

// Checks a value given token by token, as the glue walks a jsonb, against a Validator without
// building a Document: the fast path of every append with a schema (docs/schemas.md, "How
// appends are checked"). It accepts exactly what Validator::validate accepts, but does not say
// why a value fails: the caller then builds the Document and asks validate() for the violation.
// It may also give up (nesting beyond kMaxJsonDepth, tokens out of order, no memory): that too
// reads as "not passed", and the Builder and validate() then report what is wrong.
//
// Object keys must be distinct within an object, as jsonb's are. Two shortcuts let the caller
// skip work the schema does not need: before a number, wants_number_text() false means
// number_unread() will do (no decimal text needed); before a value, wants_contents() false means
// a container may be given as opaque(is_object), without its members.
class StreamChecker {
 public:
  StreamChecker();
  ~StreamChecker();
  StreamChecker(const StreamChecker&) = delete;
  StreamChecker& operator=(const StreamChecker&) = delete;

  // Ready for one value, checked against `v` (which must outlive the check).
  void start(const Validator& v);

  void begin_object();
  void end_object();
  void key(std::string_view key);
  void begin_array();
  void end_array();
  void string(std::string_view s);
  void number(std::string_view decimal_text);
  void boolean(bool b);
  void null();
  bool wants_number_text() const;
  void number_unread();
  bool wants_contents() const;
  void opaque(bool is_object);

  // Stops checking: the value reads as not passed. For a caller that hit an exception mid-walk.
  void give_up() noexcept { state_ = State::failed; }
  // No violation seen yet and not given up.
  bool ok() const { return state_ != State::failed; }
  // One complete value was given and it satisfies the schema.
  bool passed() const { return state_ == State::done; }

 private:
  struct Frame;
  enum class State { idle, running, done, failed };
  const Validator::Node* next_node() const;
  bool begin_value(const Validator::Node*& node);
  void start_capture(const Validator::Node* node);
  void end_value();
  void fail() { state_ = State::failed; }
  void finish_capture_token();

  const Validator* validator_ = nullptr;
  State state_ = State::idle;
  std::vector<Frame> frames_;
  std::vector<unsigned char> seen_;  // the required properties seen, per open object
  const Validator::Node* after_key_ = nullptr;  // an object's member schema once key() was given
  bool have_key_ = false;
  // A container or number under enum or const is built whole (with the Builder) and checked by
  // validate()'s rules once complete; a string, boolean or null is compared where it stands.
  std::unique_ptr<Builder> capture_;
  const Validator::Node* capture_node_ = nullptr;
};

// Gives a Document to a StreamChecker token by token (numbers as their exact decimal text), taking
// the shortcuts it offers when `shortcuts` is true, and says whether it passed. For tests and
// fuzzing: the glue walks jsonb itself.
bool stream_check(StreamChecker& checker, const Validator& v, const Document& data, bool shortcuts);

}  // namespace everest::schema
