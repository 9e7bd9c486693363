#include "rules/expression.h"

#include <array>
#include <cassert>
#include <cstdint>
#include <utility>
#include <vector>

#include "rules/spelling.h"

namespace carecard {
namespace {

// ---------------------------------------------------------------------------
// Names

enum class Variable : uint8_t {
  kAge,
  kAssessment,
  kHasAssessment,
  kRural,
  kUrban,
  kFirstFlag,  // kFirstFlag + i is person flag i (PersonFlagName(i))
};

constexpr std::array<std::string_view, 5 + kPersonFlagCount> kVariableNames = {
    "age",   "assessment",   "has_assessment", "rural",   "urban",    "left_behind",
    "living_alone", "empty_nest", "dibao", "tekun", "disabled", "special_family"};

// Names a misspelt value may have meant: the variables and the two literals.
constexpr std::array<std::string_view, kVariableNames.size() + 2> kValueNames = {
    "age",   "assessment",   "has_assessment", "rural",   "urban",    "left_behind", "living_alone",
    "empty_nest", "dibao", "tekun", "disabled", "special_family", "true", "false"};

// Names a misspelt connective may have meant.
constexpr std::array<std::string_view, 2> kConnectiveNames = {"and", "or"};

std::optional<Variable> VariableFromName(std::string_view name) {
  for (size_t i = 0; i < kVariableNames.size(); ++i) {
    if (kVariableNames[i] == name) return static_cast<Variable>(i);
  }
  return std::nullopt;
}

bool IsNumberVariable(Variable v) { return v == Variable::kAge || v == Variable::kAssessment; }

// ---------------------------------------------------------------------------
// Compiled form

enum class ValueType : uint8_t { kNumber, kBoolean };
enum class CompareOp : uint8_t { kLess, kLessEqual, kGreater, kGreaterEqual, kEqual, kNotEqual };
enum class NodeKind : uint8_t { kNumber, kBoolean, kVariable, kNot, kAnd, kOr, kCompare };

std::string_view CompareOpText(CompareOp op) {
  switch (op) {
    case CompareOp::kLess: return "<";
    case CompareOp::kLessEqual: return "<=";
    case CompareOp::kGreater: return ">";
    case CompareOp::kGreaterEqual: return ">=";
    case CompareOp::kEqual: return "==";
    case CompareOp::kNotEqual: return "!=";
  }
  return "?";
}

// One node of the flat tree. Children are indices into the same array (kNot,
// kCompare) or a run of the separate children array (kAnd, kOr), so the tree is
// one allocation and nodes are small.
struct Node {
  NodeKind kind = NodeKind::kBoolean;
  CompareOp op = CompareOp::kEqual;        // kCompare
  Variable variable = Variable::kAge;      // kVariable
  ValueType operand_type = ValueType::kNumber;  // kCompare: the type of both operands
  int32_t a = 0;  // kNumber, kBoolean: the value; kNot: child; kCompare: left; kAnd, kOr: first child slot
  int32_t b = 0;  // kCompare: right; kAnd, kOr: number of children
  uint32_t begin = 0;  // the node's text in the source, for Explain
  uint32_t end = 0;
};

struct NumberValue {
  int32_t value = 0;
  bool present = false;
};

class CompiledExpression final : public EligibilityRule {
 public:
  CompiledExpression(std::string source, std::vector<Node> nodes, std::vector<int32_t> children, int32_t root,
                     Language language)
      : source_(std::move(source)),
        nodes_(std::move(nodes)),
        children_(std::move(children)),
        root_(root),
        language_(language) {}

  bool Evaluate(const HolderFacts& facts) const override { return EvaluateBoolean(root_, facts); }

  std::string Explain(const HolderFacts& facts) const override {
    std::string out;
    ExplainNode(root_, facts, out);
    if (out.empty()) out = std::string(source_) + " -> " + std::string(Truth(Evaluate(facts)));
    return out;
  }

  const std::string& source() const override { return source_; }

 private:
  const Node& node(int32_t index) const { return nodes_[static_cast<size_t>(index)]; }

  // The words of Explain in the language the rule was compiled for.
  std::string_view Truth(bool value) const {
    if (language_ == Language::kChinese) return value ? "成立" : "不成立";
    return value ? "true" : "false";
  }
  std::string_view Is() const { return language_ == Language::kChinese ? " 为 " : " is "; }
  std::string_view Absent() const { return language_ == Language::kChinese ? "缺失" : "absent"; }

  static bool BooleanVariable(Variable variable, const HolderFacts& facts) {
    switch (variable) {
      case Variable::kHasAssessment: return facts.assessment.has_value();
      case Variable::kRural: return facts.rural;
      case Variable::kUrban: return facts.urban;
      default: {
        const int flag = static_cast<int>(variable) - static_cast<int>(Variable::kFirstFlag);
        assert(flag >= 0 && flag < kPersonFlagCount);
        return (facts.flags & (1u << flag)) != 0;
      }
    }
  }

  NumberValue EvaluateNumber(int32_t index, const HolderFacts& facts) const {
    const Node& n = node(index);
    if (n.kind == NodeKind::kNumber) return {n.a, true};
    assert(n.kind == NodeKind::kVariable && IsNumberVariable(n.variable));
    if (n.variable == Variable::kAge) return {facts.age, true};
    if (facts.assessment) return {*facts.assessment, true};
    return {0, false};
  }

  bool EvaluateBoolean(int32_t index, const HolderFacts& facts) const {
    const Node& n = node(index);
    switch (n.kind) {
      case NodeKind::kBoolean: return n.a != 0;
      case NodeKind::kVariable: return BooleanVariable(n.variable, facts);
      case NodeKind::kNot: return !EvaluateBoolean(n.a, facts);
      case NodeKind::kAnd:
        for (int32_t i = n.a; i < n.a + n.b; ++i) {
          if (!EvaluateBoolean(children_[static_cast<size_t>(i)], facts)) return false;
        }
        return true;
      case NodeKind::kOr:
        for (int32_t i = n.a; i < n.a + n.b; ++i) {
          if (EvaluateBoolean(children_[static_cast<size_t>(i)], facts)) return true;
        }
        return false;
      case NodeKind::kCompare: return EvaluateComparison(n, facts);
      case NodeKind::kNumber: break;
    }
    assert(false && "a number node where a boolean was type-checked");
    return false;
  }

  bool EvaluateComparison(const Node& n, const HolderFacts& facts) const {
    if (n.operand_type == ValueType::kBoolean) {
      const bool left = EvaluateBoolean(n.a, facts);
      const bool right = EvaluateBoolean(n.b, facts);
      return n.op == CompareOp::kEqual ? left == right : left != right;
    }
    const NumberValue left = EvaluateNumber(n.a, facts);
    const NumberValue right = EvaluateNumber(n.b, facts);
    // rules.md: a comparison with an absent value is false, == and != alike.
    if (!left.present || !right.present) return false;
    switch (n.op) {
      case CompareOp::kLess: return left.value < right.value;
      case CompareOp::kLessEqual: return left.value <= right.value;
      case CompareOp::kGreater: return left.value > right.value;
      case CompareOp::kGreaterEqual: return left.value >= right.value;
      case CompareOp::kEqual: return left.value == right.value;
      case CompareOp::kNotEqual: return left.value != right.value;
    }
    return false;
  }

  std::string_view Text(const Node& n) const { return std::string_view(source_).substr(n.begin, n.end - n.begin); }

  // "age is 59", "assessment is absent", "rural is true".
  void AppendValue(int32_t index, const HolderFacts& facts, std::string& out) const {
    const Node& n = node(index);
    out.append(Text(n));
    out.append(Is());
    if (IsNumberVariable(n.variable)) {
      const NumberValue value = EvaluateNumber(index, facts);
      out.append(value.present ? std::to_string(value.value) : std::string(Absent()));
    } else {
      out.append(Truth(BooleanVariable(n.variable, facts)));
    }
  }

  // Lists every leaf in source order, whatever short-circuiting would skip, so
  // that a reader sees every part that held and every part that failed.
  void ExplainNode(int32_t index, const HolderFacts& facts, std::string& out) const {
    const Node& n = node(index);
    switch (n.kind) {
      case NodeKind::kNumber:
      case NodeKind::kBoolean: return;  // a literal explains nothing
      case NodeKind::kVariable:
        if (!out.empty()) out.append("; ");
        out.append(Text(n));
        out.append(" = ");
        out.append(Truth(BooleanVariable(n.variable, facts)));
        return;
      case NodeKind::kNot: ExplainNode(n.a, facts, out); return;
      case NodeKind::kAnd:
      case NodeKind::kOr:
        for (int32_t i = n.a; i < n.a + n.b; ++i) ExplainNode(children_[static_cast<size_t>(i)], facts, out);
        return;
      case NodeKind::kCompare: {
        // Sub-expressions compared as booleans explain their own leaves first.
        for (int32_t operand : {n.a, n.b}) {
          const NodeKind kind = node(operand).kind;
          if (kind != NodeKind::kVariable && kind != NodeKind::kNumber && kind != NodeKind::kBoolean) {
            ExplainNode(operand, facts, out);
          }
        }
        if (!out.empty()) out.append("; ");
        out.append(Text(n));
        bool first_value = true;
        for (int32_t operand : {n.a, n.b}) {
          if (node(operand).kind != NodeKind::kVariable) continue;
          out.append(first_value ? ": " : ", ");
          first_value = false;
          AppendValue(operand, facts, out);
        }
        out.append(" -> ");
        out.append(Truth(EvaluateComparison(n, facts)));
        return;
      }
    }
  }

  const std::string source_;
  const std::vector<Node> nodes_;
  const std::vector<int32_t> children_;
  const int32_t root_;
  const Language language_;  // of Explain's words
};

// ---------------------------------------------------------------------------
// Lexer

enum class TokenKind : uint8_t { kNumber, kName, kLeftParen, kRightParen, kCompare, kEnd };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  CompareOp op = CompareOp::kEqual;  // kCompare
  int32_t number = 0;                // kNumber
  uint32_t begin = 0;                // bytes of the token in the source
  uint32_t end = 0;
  int position = 1;                  // 1-based, in code points
};

// Whole numbers above this are surely a slip (ages and levels are small) and
// keep every literal inside int32_t.
constexpr int64_t kMaxNumberLiteral = 1'000'000'000;

bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || (c >= '0' && c <= '9'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// What a person probably meant by a character the language does not have:
// C-style operators and the full-width forms a Chinese input method produces.
std::string_view CharacterHint(std::string_view character) {
  if (character == "=") return "==";
  if (character == "!") return "not";
  if (character == "&") return "and";
  if (character == "|") return "or";
  if (character == "\u2265") return ">=";  // ≥
  if (character == "\u2264") return "<=";  // ≤
  if (character == "\u2260") return "!=";  // ≠
  if (character == "\uFF08") return "(";   // （
  if (character == "\uFF09") return ")";   // ）
  if (character == "\uFF1D") return "==";  // ＝
  if (character == "\uFF1E") return ">";   // ＞
  if (character == "\uFF1C") return "<";   // ＜
  return {};
}

class Compiler {
 public:
  Compiler(std::string_view source, Language language) : source_(source), language_(language) {}

  ExpressionCompileResult Run() {
    ExpressionCompileResult result;
    if (source_.size() > kMaxExpressionBytes) {
      Fail(1, Format(MessageId::kExprTooLong, language_, {std::to_string(kMaxExpressionBytes)}));
    } else if (Lex()) {
      if (tokens_.front().kind == TokenKind::kEnd) {
        Fail(1, Format(MessageId::kExprEmpty, language_));
      } else if (auto root = ParseOr(); root && ExpectEnd() && CheckWholeIsBoolean(*root)) {
        result.rule = std::make_shared<CompiledExpression>(std::string(source_), std::move(nodes_),
                                                           std::move(children_), root->node, language_);
      }
    }
    result.error = std::move(error_);
    if (result.error) result.rule.reset();
    return result;
  }

 private:
  // A parsed sub-expression: its node, type and text (parentheses included).
  struct Operand {
    int32_t node = 0;
    ValueType type = ValueType::kBoolean;
    uint32_t begin = 0;
    uint32_t end = 0;
    int position = 1;
  };

  void Fail(int position, std::string message) {
    if (!error_) error_ = ExpressionError{position, std::move(message)};
  }

  std::string Hint(std::optional<std::string_view> suggestion) const {
    return suggestion ? Format(MessageId::kHintDidYouMean, language_, {*suggestion}) : std::string();
  }

  std::string_view Text(uint32_t begin, uint32_t end) const { return source_.substr(begin, end - begin); }
  std::string_view Text(const Token& t) const { return Text(t.begin, t.end); }
  std::string_view Text(const Operand& o) const { return Text(o.begin, o.end); }

  // --- lexing ---------------------------------------------------------------

  bool Lex() {
    size_t i = 0;
    int position = 1;
    auto advance = [&](size_t bytes) {
      position += static_cast<int>(CountCodePoints(source_.substr(i, bytes)));
      i += bytes;
    };
    while (true) {
      while (i < source_.size() && IsSpace(source_[i])) advance(1);
      Token token;
      token.begin = static_cast<uint32_t>(i);
      token.position = position;
      if (i == source_.size()) {
        token.end = token.begin;
        tokens_.push_back(token);
        return true;
      }
      const char c = source_[i];
      size_t length = 1;
      if (IsDigit(c)) {
        int64_t value = 0;
        size_t digits_end = i;
        while (digits_end < source_.size() && IsDigit(source_[digits_end])) {
          // Stop accumulating once too large; the check below reports it.
          if (value <= kMaxNumberLiteral) value = value * 10 + (source_[digits_end] - '0');
          ++digits_end;
        }
        length = digits_end - i;
        if (i + length < source_.size() && IsNameChar(source_[i + length])) {
          const int bad_position = position + static_cast<int>(length);
          Fail(bad_position, Format(MessageId::kExprUnexpectedCharacter, language_,
                                    {CodePointAt(source_, i + length), std::to_string(bad_position), ""}));
          return false;
        }
        if (value > kMaxNumberLiteral) {
          Fail(position, Format(MessageId::kExprNumberTooLarge, language_,
                                {source_.substr(i, length), std::to_string(position)}));
          return false;
        }
        token.kind = TokenKind::kNumber;
        token.number = static_cast<int32_t>(value);
      } else if (IsNameStart(c)) {
        while (i + length < source_.size() && IsNameChar(source_[i + length])) ++length;
        token.kind = TokenKind::kName;
      } else if (c == '(') {
        token.kind = TokenKind::kLeftParen;
      } else if (c == ')') {
        token.kind = TokenKind::kRightParen;
      } else if (c == '<' || c == '>' || ((c == '=' || c == '!') && i + 1 < source_.size() && source_[i + 1] == '=')) {
        const bool with_equals = i + 1 < source_.size() && source_[i + 1] == '=';
        token.kind = TokenKind::kCompare;
        if (c == '<') token.op = with_equals ? CompareOp::kLessEqual : CompareOp::kLess;
        if (c == '>') token.op = with_equals ? CompareOp::kGreaterEqual : CompareOp::kGreater;
        if (c == '=') token.op = CompareOp::kEqual;
        if (c == '!') token.op = CompareOp::kNotEqual;
        length = with_equals ? 2 : 1;
      } else {
        const std::string_view character = CodePointAt(source_, i);
        const std::string_view hint = CharacterHint(character);
        Fail(position, Format(MessageId::kExprUnexpectedCharacter, language_,
                              {character, std::to_string(position),
                               hint.empty() ? std::string() : Hint(hint)}));
        return false;
      }
      advance(length);
      token.end = static_cast<uint32_t>(i);
      tokens_.push_back(token);
    }
  }

  // --- parsing --------------------------------------------------------------

  const Token& Peek() const { return tokens_[next_]; }
  bool PeekName(std::string_view name) const { return Peek().kind == TokenKind::kName && Text(Peek()) == name; }
  const Token& Take() { return tokens_[next_ < tokens_.size() - 1 ? next_++ : next_]; }

  int32_t AddNode(const Node& n) {
    nodes_.push_back(n);
    return static_cast<int32_t>(nodes_.size() - 1);
  }

  bool RequireBoolean(const Operand& operand, std::string_view operator_text) {
    if (operand.type == ValueType::kBoolean) return true;
    Fail(operand.position, Format(MessageId::kExprLogicNeedsBooleans, language_,
                                  {operator_text, Text(operand), std::to_string(operand.position)}));
    return false;
  }

  // or / and: n-ary nodes, so that a long chain does not deepen the tree.
  std::optional<Operand> ParseConnective(std::string_view word, NodeKind kind,
                                         std::optional<Operand> (Compiler::*parse_operand)()) {
    std::optional<Operand> first = (this->*parse_operand)();
    if (!first) return std::nullopt;
    if (!PeekName(word)) return first;
    if (!RequireBoolean(*first, word)) return std::nullopt;
    std::vector<int32_t> members = {first->node};
    Operand last = *first;
    while (PeekName(word)) {
      Take();
      std::optional<Operand> next = (this->*parse_operand)();
      if (!next) return std::nullopt;
      if (!RequireBoolean(*next, word)) return std::nullopt;
      members.push_back(next->node);
      last = *next;
    }
    Node n;
    n.kind = kind;
    n.a = static_cast<int32_t>(children_.size());
    n.b = static_cast<int32_t>(members.size());
    n.begin = first->begin;
    n.end = last.end;
    children_.insert(children_.end(), members.begin(), members.end());
    return Operand{AddNode(n), ValueType::kBoolean, first->begin, last.end, first->position};
  }

  std::optional<Operand> ParseOr() { return ParseConnective("or", NodeKind::kOr, &Compiler::ParseAnd); }
  std::optional<Operand> ParseAnd() { return ParseConnective("and", NodeKind::kAnd, &Compiler::ParseNot); }

  bool EnterLevel(int position) {
    if (++depth_ <= kMaxExpressionDepth) return true;
    Fail(position, Format(MessageId::kExprTooDeep, language_,
                          {std::to_string(position), std::to_string(kMaxExpressionDepth)}));
    return false;
  }

  std::optional<Operand> ParseNot() {
    if (!PeekName("not")) return ParseComparison();
    const Token word = Take();
    if (!EnterLevel(word.position)) return std::nullopt;
    std::optional<Operand> operand = ParseNot();
    --depth_;
    if (!operand || !RequireBoolean(*operand, "not")) return std::nullopt;
    Node n;
    n.kind = NodeKind::kNot;
    n.a = operand->node;
    n.begin = word.begin;
    n.end = operand->end;
    return Operand{AddNode(n), ValueType::kBoolean, word.begin, operand->end, word.position};
  }

  // A comparison or a chain of them; `a < b <= c` becomes `a < b and b <= c`,
  // the middle operand's node shared by both comparisons.
  std::optional<Operand> ParseComparison() {
    std::optional<Operand> left = ParseValue();
    if (!left) return std::nullopt;
    if (Peek().kind != TokenKind::kCompare) return left;
    const Operand first = *left;
    std::vector<int32_t> comparisons;
    while (Peek().kind == TokenKind::kCompare) {
      const Token op = Take();
      std::optional<Operand> right = ParseValue();
      if (!right || !CheckComparisonTypes(*left, op, *right)) return std::nullopt;
      Node n;
      n.kind = NodeKind::kCompare;
      n.op = op.op;
      n.operand_type = left->type;
      n.a = left->node;
      n.b = right->node;
      n.begin = left->begin;
      n.end = right->end;
      comparisons.push_back(AddNode(n));
      left = right;
    }
    if (comparisons.size() == 1) {
      return Operand{comparisons.front(), ValueType::kBoolean, first.begin, left->end, first.position};
    }
    Node chain;
    chain.kind = NodeKind::kAnd;
    chain.a = static_cast<int32_t>(children_.size());
    chain.b = static_cast<int32_t>(comparisons.size());
    chain.begin = first.begin;
    chain.end = left->end;
    children_.insert(children_.end(), comparisons.begin(), comparisons.end());
    return Operand{AddNode(chain), ValueType::kBoolean, first.begin, left->end, first.position};
  }

  bool CheckComparisonTypes(const Operand& left, const Token& op, const Operand& right) {
    const std::string_view op_text = CompareOpText(op.op);
    if (op.op == CompareOp::kEqual || op.op == CompareOp::kNotEqual) {
      if (left.type == right.type) return true;
      Fail(op.position, Format(MessageId::kExprEqualityMixesTypes, language_,
                               {op_text, std::to_string(op.position), Text(left), Text(right)}));
      return false;
    }
    for (const Operand* operand : {&left, &right}) {
      if (operand->type == ValueType::kBoolean) {
        Fail(operand->position, Format(MessageId::kExprOrderingNeedsNumbers, language_,
                                       {op_text, Text(*operand), std::to_string(operand->position)}));
        return false;
      }
    }
    return true;
  }

  std::optional<Operand> ParseValue() {
    const Token token = Take();
    Node n;
    n.begin = token.begin;
    n.end = token.end;
    switch (token.kind) {
      case TokenKind::kNumber:
        n.kind = NodeKind::kNumber;
        n.a = token.number;
        return Operand{AddNode(n), ValueType::kNumber, token.begin, token.end, token.position};
      case TokenKind::kName: {
        const std::string_view name = Text(token);
        if (name == "true" || name == "false") {
          n.kind = NodeKind::kBoolean;
          n.a = name == "true" ? 1 : 0;
          return Operand{AddNode(n), ValueType::kBoolean, token.begin, token.end, token.position};
        }
        if (name == "and" || name == "or" || name == "not") {
          Fail(token.position, Format(MessageId::kExprExpectedValue, language_,
                                      {name, std::to_string(token.position), ""}));
          return std::nullopt;
        }
        const std::optional<Variable> variable = VariableFromName(name);
        if (!variable) {
          Fail(token.position, Format(MessageId::kExprUnknownVariable, language_,
                                      {name, std::to_string(token.position), Hint(NearestName(name, kValueNames))}));
          return std::nullopt;
        }
        n.kind = NodeKind::kVariable;
        n.variable = *variable;
        return Operand{AddNode(n), IsNumberVariable(*variable) ? ValueType::kNumber : ValueType::kBoolean,
                       token.begin, token.end, token.position};
      }
      case TokenKind::kLeftParen: {
        if (!EnterLevel(token.position)) return std::nullopt;
        std::optional<Operand> inner = ParseOr();
        --depth_;
        if (!inner) return std::nullopt;
        if (Peek().kind == TokenKind::kEnd) {
          Fail(token.position,
               Format(MessageId::kExprUnclosedParenthesis, language_, {std::to_string(token.position)}));
          return std::nullopt;
        }
        if (Peek().kind != TokenKind::kRightParen) {
          FailExpectedOperator(Peek());
          return std::nullopt;
        }
        const Token close = Take();
        inner->begin = token.begin;
        inner->end = close.end;
        inner->position = token.position;
        return inner;
      }
      case TokenKind::kEnd:
        Fail(token.position, Format(MessageId::kExprExpectedValueAtEnd, language_, {std::to_string(token.position)}));
        return std::nullopt;
      case TokenKind::kRightParen:
      case TokenKind::kCompare: break;
    }
    Fail(token.position, Format(MessageId::kExprExpectedValue, language_,
                                {Text(token), std::to_string(token.position), ""}));
    return std::nullopt;
  }

  void FailExpectedOperator(const Token& token) {
    if (token.kind == TokenKind::kRightParen) {
      Fail(token.position, Format(MessageId::kExprUnopenedParenthesis, language_, {std::to_string(token.position)}));
      return;
    }
    std::string hint;
    if (token.kind == TokenKind::kName) hint = Hint(NearestName(Text(token), kConnectiveNames));
    Fail(token.position, Format(MessageId::kExprExpectedOperator, language_,
                                {Text(token), std::to_string(token.position), hint}));
  }

  bool ExpectEnd() {
    if (Peek().kind == TokenKind::kEnd) return true;
    FailExpectedOperator(Peek());
    return false;
  }

  bool CheckWholeIsBoolean(const Operand& whole) {
    if (whole.type == ValueType::kBoolean) return true;
    Fail(whole.position, Format(MessageId::kExprNotABoolean, language_, {Text(whole)}));
    return false;
  }

  const std::string_view source_;
  const Language language_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
  int depth_ = 0;
  std::vector<Node> nodes_;
  std::vector<int32_t> children_;
  std::optional<ExpressionError> error_;
};

}  // namespace

ExpressionCompileResult CompileEligibilityExpression(std::string_view source, Language language) {
  return Compiler(source, language).Run();
}

std::span<const std::string_view> ExpressionVariableNames() { return kVariableNames; }

}  // namespace carecard
