#include "registry/search.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include "common/base64.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace abgate::registry {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool Contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}
bool Contains(const std::vector<KeyType>& v, KeyType t) { return std::find(v.begin(), v.end(), t) != v.end(); }

absl::Status Invalid(std::string_view what) { return absl::InvalidArgumentError(std::string(what)); }

std::string_view ComparatorName(Comparator c) {
  switch (c) {
    case Comparator::kEq: return "=";
    case Comparator::kNe: return "!=";
    case Comparator::kGt: return ">";
    case Comparator::kGe: return ">=";
    case Comparator::kLt: return "<";
    case Comparator::kLe: return "<=";
    case Comparator::kLike: return "LIKE";
    case Comparator::kILike: return "ILIKE";
    case Comparator::kIn: return "IN";
    case Comparator::kNotIn: return "NOT IN";
  }
  return "?";
}

bool IsNumericOp(Comparator c) {
  return c == Comparator::kEq || c == Comparator::kNe || c == Comparator::kGt || c == Comparator::kGe ||
         c == Comparator::kLt || c == Comparator::kLe;
}
bool IsStringOp(Comparator c) {
  return c == Comparator::kEq || c == Comparator::kNe || c == Comparator::kLike || c == Comparator::kILike;
}

// Maps an identifier's prefix ("metrics", "tag", "attribute", ...) to its key type.
std::optional<KeyType> PrefixType(std::string_view prefix) {
  std::string p(prefix);
  std::transform(p.begin(), p.end(), p.begin(), [](unsigned char c) { return std::tolower(c); });
  if (p == "metric" || p == "metrics") return KeyType::kMetric;
  if (p == "param" || p == "params" || p == "parameter" || p == "parameters") return KeyType::kParam;
  if (p == "tag" || p == "tags") return KeyType::kTag;
  if (p == "attr" || p == "attribute" || p == "attributes" || p == "run") return KeyType::kAttribute;
  if (p == "dataset" || p == "datasets") return KeyType::kDataset;
  return std::nullopt;
}

std::string CanonicalAttribute(std::string_view name) {
  if (name == "run name" || name == "run_name" || name == "Run name") return "run_name";
  if (name == "created" || name == "Created") return "start_time";
  if (name == "run_uuid") return "run_id";
  return std::string(name);
}

class Lexer {
 public:
  explicit Lexer(std::string_view s) : s_(s) {}
  void SkipSpace() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  bool AtEnd() {
    SkipSpace();
    return i_ >= s_.size();
  }
  char Peek() {
    SkipSpace();
    return i_ < s_.size() ? s_[i_] : '\0';
  }
  // A quoted run with its quote character; '' (doubled quote) or \' inside stands for a quote.
  absl::StatusOr<std::string> Quoted() {
    SkipSpace();
    const char q = s_[i_++];
    std::string out;
    while (i_ < s_.size()) {
      const char c = s_[i_++];
      if (c == '\\' && i_ < s_.size()) {
        out += s_[i_++];
      } else if (c == q) {
        if (i_ < s_.size() && s_[i_] == q) {
          out += q;
          ++i_;
        } else {
          return out;
        }
      } else {
        out += c;
      }
    }
    return Invalid(StrCat("Invalid filter string: unterminated quote in '", s_, "'"));
  }
  // A bare word: letters, digits and the characters MLflow keys use.
  std::string_view Word() {
    SkipSpace();
    const size_t start = i_;
    while (i_ < s_.size()) {
      const unsigned char c = s_[i_];
      if (std::isalnum(c) || c == '_' || c == '.' || c == '-' || c == '/' || c == ':' || c >= 0x80) {
        ++i_;
      } else {
        break;
      }
    }
    return s_.substr(start, i_ - start);
  }
  std::string_view Operator() {
    SkipSpace();
    const size_t start = i_;
    while (i_ < s_.size() && std::string_view("=!<>").find(s_[i_]) != std::string_view::npos) ++i_;
    return s_.substr(start, i_ - start);
  }
  std::string_view Number() {
    SkipSpace();
    const size_t start = i_;
    while (i_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' ||
                              s_[i_] == '-' || s_[i_] == '+')) {
      ++i_;
    }
    return s_.substr(start, i_ - start);
  }
  void Advance() { ++i_; }
  std::string_view rest() const { return s_.substr(std::min(i_, s_.size())); }

 private:
  std::string_view s_;
  size_t i_ = 0;
};

struct Identifier {
  KeyType type;
  std::string key;
};

// `name`, `tags.k`, ``tags.`my key` ``, `tags."my key"`, `"run name"`, `attributes.start_time`.
absl::StatusOr<Identifier> ParseIdentifier(Lexer& lex, const std::vector<KeyType>& key_types) {
  const char c = lex.Peek();
  if (c == '`' || c == '"') {
    ABGATE_ASSIGN_OR_RETURN(std::string name, lex.Quoted());
    return Identifier{KeyType::kAttribute, CanonicalAttribute(name)};
  }
  std::string_view word = lex.Word();
  if (word.empty()) return Invalid(StrCat("Invalid filter string: expected an identifier at '", lex.rest(), "'"));
  const size_t dot = word.find('.');
  if (dot == std::string_view::npos) return Identifier{KeyType::kAttribute, CanonicalAttribute(word)};
  const std::string_view prefix = word.substr(0, dot);
  std::string key(word.substr(dot + 1));
  const auto type = PrefixType(prefix);
  if (!type) {
    return Invalid(StrCat("Invalid entity type '", prefix,
                          "'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"));
  }
  if (*type != KeyType::kAttribute && !Contains(key_types, *type)) {
    return Invalid(StrCat("Invalid entity type '", prefix, "' for this search"));
  }
  if (key.empty() && (lex.Peek() == '`' || lex.Peek() == '"')) {
    ABGATE_ASSIGN_OR_RETURN(key, lex.Quoted());
  }
  if (key.empty()) return Invalid(StrCat("Invalid filter string: empty key after '", prefix, ".'"));
  if (*type == KeyType::kAttribute) key = CanonicalAttribute(key);
  return Identifier{*type, std::move(key)};
}

absl::StatusOr<Comparator> ParseComparator(Lexer& lex) {
  const char c = lex.Peek();
  if (c == '=' || c == '!' || c == '<' || c == '>') {
    const std::string_view op = lex.Operator();
    if (op == "=") return Comparator::kEq;
    if (op == "!=" || op == "<>") return Comparator::kNe;
    if (op == ">") return Comparator::kGt;
    if (op == ">=") return Comparator::kGe;
    if (op == "<") return Comparator::kLt;
    if (op == "<=") return Comparator::kLe;
    return Invalid(StrCat("Invalid comparator '", op, "'"));
  }
  const std::string_view word = lex.Word();
  if (IEquals(word, "LIKE")) return Comparator::kLike;
  if (IEquals(word, "ILIKE")) return Comparator::kILike;
  if (IEquals(word, "IN")) return Comparator::kIn;
  if (IEquals(word, "NOT")) {
    if (IEquals(lex.Word(), "IN")) return Comparator::kNotIn;
    return Invalid("Invalid clause(s) in filter string: 'NOT'");
  }
  return Invalid(StrCat("Invalid comparator '", word.empty() ? lex.rest() : word, "'"));
}

absl::Status CheckClause(const Clause& c, const FilterRules& rules) {
  const std::string op(ComparatorName(c.op));
  switch (c.type) {
    case KeyType::kMetric:
      if (!IsNumericOp(c.op)) {
        return Invalid(StrCat("Invalid comparator '", op, "' not one of '['>', '>=', '!=', '=', '<', '<=']'"));
      }
      if (!c.numeric) return Invalid(StrCat("Expected numeric value type for metric. Found '", c.text, "'"));
      return absl::OkStatus();
    case KeyType::kParam:
    case KeyType::kTag:
      if (!IsStringOp(c.op)) {
        return Invalid(StrCat("Invalid comparator '", op, "' not one of '['!=', '=', 'LIKE', 'ILIKE']'"));
      }
      if (c.numeric) {
        return Invalid(StrCat("Expected a quoted string value for ", c.type == KeyType::kTag ? "tag" : "param",
                              " '", c.key, "'"));
      }
      return absl::OkStatus();
    case KeyType::kDataset:
      if (!IsStringOp(c.op) && c.op != Comparator::kIn && c.op != Comparator::kNotIn) {
        return Invalid(StrCat("Invalid comparator '", op, "' for dataset"));
      }
      if (!Contains({"name", "digest", "context"}, c.key)) {
        return Invalid(StrCat("Invalid dataset key '", c.key, "'. Valid keys are 'name', 'digest', 'context'"));
      }
      return absl::OkStatus();
    case KeyType::kAttribute:
      break;
  }
  if (Contains(rules.numeric_attributes, c.key)) {
    if (!IsNumericOp(c.op)) {
      return Invalid(StrCat("Invalid comparator '", op, "' not one of '['>', '>=', '!=', '=', '<', '<=']'"));
    }
    if (!c.numeric) {
      return Invalid(StrCat("Expected numeric value type for numeric attribute: ", c.key, ". Found '", c.text, "'"));
    }
    return absl::OkStatus();
  }
  if (Contains(rules.string_attributes, c.key)) {
    if (c.op == Comparator::kIn || c.op == Comparator::kNotIn) {
      if (!Contains(rules.in_attributes, c.key) || (c.op == Comparator::kNotIn && !rules.allow_not_in)) {
        return Invalid(StrCat("Invalid comparator '", op, "' for attribute '", c.key, "'"));
      }
      return absl::OkStatus();
    }
    if (!IsStringOp(c.op)) {
      return Invalid(StrCat("Invalid comparator '", op, "' not one of '['!=', '=', 'LIKE', 'ILIKE']'"));
    }
    if (c.numeric) return Invalid(StrCat("Expected a quoted string value for attribute '", c.key, "'"));
    return absl::OkStatus();
  }
  return Invalid(StrCat("Invalid attribute key '", c.key, "' specified. Valid keys are '", rules.valid_keys_message, "'"));
}

}  // namespace

absl::StatusOr<std::vector<Clause>> ParseFilter(std::string_view filter, const FilterRules& rules) {
  std::vector<Clause> clauses;
  Lexer lex(filter);
  if (lex.AtEnd()) return clauses;
  while (true) {
    if (lex.Peek() == '(') return Invalid("Invalid clause(s) in filter string: '('");
    ABGATE_ASSIGN_OR_RETURN(Identifier id, ParseIdentifier(lex, rules.key_types));
    if (id.type == KeyType::kAttribute && (IEquals(id.key, "OR") || IEquals(id.key, "NOT"))) {
      return Invalid(StrCat("Invalid clause(s) in filter string: '", id.key, "'"));
    }
    Clause c;
    c.type = id.type;
    c.key = std::move(id.key);
    ABGATE_ASSIGN_OR_RETURN(c.op, ParseComparator(lex));
    const char v = lex.Peek();
    if (c.op == Comparator::kIn || c.op == Comparator::kNotIn) {
      if (v != '(') return Invalid(StrCat("Expected a parenthesised list of quoted values after ", ComparatorName(c.op)));
      lex.Advance();
      while (true) {
        const char q = lex.Peek();
        if (q != '\'' && q != '"') return Invalid("Expected a quoted string value inside the IN list");
        ABGATE_ASSIGN_OR_RETURN(std::string item, lex.Quoted());
        c.values.push_back(std::move(item));
        const char sep = lex.Peek();
        lex.Advance();
        if (sep == ')') break;
        if (sep != ',') return Invalid("Invalid IN list: expected ',' or ')'");
      }
      // Sorted for MatchString's binary search (an IN list can be as long as the body).
      std::sort(c.values.begin(), c.values.end());
      c.values.erase(std::unique(c.values.begin(), c.values.end()), c.values.end());
    } else if (v == '\'' || v == '"') {
      ABGATE_ASSIGN_OR_RETURN(c.text, lex.Quoted());
      if (c.op == Comparator::kLike || c.op == Comparator::kILike) {
        // '%%' matches what '%' matches; one '%' per run bounds the pattern by its literals.
        c.text.erase(std::unique(c.text.begin(), c.text.end(), [](char a, char b) { return a == '%' && b == '%'; }),
                     c.text.end());
      }
    } else {
      const std::string_view num = lex.Number();
      double d = 0;
      const auto [ptr, ec] = std::from_chars(num.data(), num.data() + num.size(), d);
      if (num.empty() || ec != std::errc() || ptr != num.data() + num.size() || !std::isfinite(d)) {
        return Invalid(StrCat("Invalid filter string: expected a quoted string or a number after '",
                              ComparatorName(c.op), "', got '", num.empty() ? lex.rest() : num, "'"));
      }
      c.numeric = true;
      c.number = d;
      c.text = std::string(num);
    }
    ABGATE_RETURN_IF_ERROR(CheckClause(c, rules));
    clauses.push_back(std::move(c));
    if (lex.AtEnd()) break;
    const std::string_view joiner = lex.Word();
    if (IEquals(joiner, "AND")) continue;
    if (IEquals(joiner, "OR") || IEquals(joiner, "NOT")) {
      return Invalid(StrCat("Invalid clause(s) in filter string: '", joiner, "'"));
    }
    return Invalid(StrCat("Invalid filter '", filter, "': expected AND at '", lex.rest(), "'"));
  }
  return clauses;
}

absl::StatusOr<std::vector<OrderBy>> ParseOrderBy(const std::vector<std::string>& items,
                                                  const std::vector<std::string>& attributes,
                                                  const std::vector<KeyType>& key_types) {
  std::vector<OrderBy> out;
  std::set<std::pair<KeyType, std::string>> seen;
  for (const std::string& item : items) {
    Lexer lex(item);
    if (lex.AtEnd()) return Invalid(StrCat("Invalid order_by clause '", item, "'"));
    ABGATE_ASSIGN_OR_RETURN(Identifier id, ParseIdentifier(lex, key_types));
    OrderBy o{id.type, std::move(id.key), true};
    if (!lex.AtEnd()) {
      const std::string_view dir = lex.Word();
      if (IEquals(dir, "DESC")) {
        o.ascending = false;
      } else if (!IEquals(dir, "ASC")) {
        return Invalid(StrCat("Invalid ordering key in order_by clause '", item, "'"));
      }
      if (!lex.AtEnd()) return Invalid(StrCat("Invalid order_by clause '", item, "'"));
    }
    if (o.type == KeyType::kAttribute && !Contains(attributes, o.key)) {
      return Invalid(StrCat("Invalid order_by key '", o.key, "' in clause '", item, "'"));
    }
    if (o.type == KeyType::kDataset) return Invalid(StrCat("Invalid order_by clause '", item, "'"));
    // A set, not a scan of the previous items: a list of many distinct keys stays linear.
    if (!seen.emplace(o.type, o.key).second) return Invalid(StrCat("`order_by` contains duplicate fields: ", item));
    out.push_back(std::move(o));
  }
  return out;
}

bool LikeMatch(std::string_view text, std::string_view pattern, bool fold_case) {
  // A pattern needing more characters than the text has cannot match; checked first so that a
  // huge pattern costs one pass, not one per character of every value it is matched against.
  // Stops counting once past the text's length (ParseFilter collapses runs of '%').
  size_t literal = 0;
  for (size_t i = 0; i < pattern.size() && literal <= text.size(); ++i) literal += pattern[i] != '%';
  if (literal > text.size()) return false;
  // Iterative wildcard matching with backtracking to the last '%'.
  size_t t = 0, p = 0, star_p = std::string_view::npos, star_t = 0;
  auto eq = [fold_case](char a, char b) {
    return fold_case ? std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b))
                     : a == b;
  };
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '%') {
      star_p = p++;
      star_t = t;
    } else if (p < pattern.size() && (pattern[p] == '_' || eq(pattern[p], text[t]))) {
      ++p;
      ++t;
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      t = ++star_t;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '%') ++p;
  return p == pattern.size();
}

bool MatchString(const Clause& c, std::string_view value) {
  switch (c.op) {
    case Comparator::kEq: return value == c.text;
    case Comparator::kNe: return value != c.text;
    case Comparator::kLike: return LikeMatch(value, c.text, false);
    case Comparator::kILike: return LikeMatch(value, c.text, true);
    case Comparator::kIn: return std::binary_search(c.values.begin(), c.values.end(), value);
    case Comparator::kNotIn: return !std::binary_search(c.values.begin(), c.values.end(), value);
    default: return false;
  }
}

bool MatchNumber(const Clause& c, double value) {
  switch (c.op) {
    case Comparator::kEq: return value == c.number;
    case Comparator::kNe: return value != c.number;
    case Comparator::kGt: return value > c.number;
    case Comparator::kGe: return value >= c.number;
    case Comparator::kLt: return value < c.number;
    case Comparator::kLe: return value <= c.number;
    default: return false;
  }
}

std::string EncodePageToken(int64_t offset) {
  return common::Base64Encode(StrCat("{\"offset\": ", offset, "}"));
}

absl::StatusOr<int64_t> DecodePageToken(std::string_view token) {
  if (token.empty()) return 0;
  const auto json = common::Base64Decode(token);
  if (!json) return Invalid("Invalid page token, could not base64-decode");
  // {"offset": N} — parsed by hand to keep this library free of a JSON dependency.
  const size_t key = json->find("\"offset\"");
  const size_t colon = key == std::string::npos ? key : json->find(':', key);
  if (colon == std::string::npos) return Invalid("Invalid page token, offset not found");
  size_t i = colon + 1;
  while (i < json->size() && (*json)[i] == ' ') ++i;
  int64_t offset = -1;
  const auto [ptr, ec] = std::from_chars(json->data() + i, json->data() + json->size(), offset);
  if (ec != std::errc() || offset < 0) return Invalid("Invalid page token, offset is not a non-negative integer");
  return offset;
}

}  // namespace abgate::registry
