#include "rules/yaml_documents.h"

#include <yaml-cpp/eventhandler.h>

#include <sstream>
#include <string>
#include <vector>

namespace carecard {
namespace {

// Records where each document's first node is, and nothing else.
class DocumentStarts : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> first_nodes;

  void OnDocumentStart(const YAML::Mark&) override { pending_ = true; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override { Node(mark); }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t, const std::string&) override { Node(mark); }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Node(mark);
  }
  void OnMapEnd() override {}

 private:
  void Node(const YAML::Mark& mark) {
    if (!pending_) return;
    first_nodes.push_back(mark);
    pending_ = false;
  }
  bool pending_ = false;
};

}  // namespace

YamlDocuments LoadFirstYamlDocument(std::string_view text) {
  std::istringstream in{std::string(text)};
  YAML::Parser parser(in);
  DocumentStarts starts;
  // At most three documents: the one we read, whether another follows, and one
  // more to see whether the parser is still making progress.
  for (int documents = 0; documents < 3 && parser.HandleNextDocument(starts); ++documents) {
  }
  // A parser that made no progress is looking at the stray ',' of yaml-cpp
  // issue #1040.
  for (size_t i = 1; i < starts.first_nodes.size(); ++i) {
    if (starts.first_nodes[i].pos == starts.first_nodes[i - 1].pos) {
      throw YAML::ParserException(starts.first_nodes[i], "unexpected ',' outside a [list] or {mapping}");
    }
  }
  YamlDocuments out;
  if (starts.first_nodes.size() >= 2) out.second = starts.first_nodes[1];
  out.first = YAML::Load(std::string(text));  // the first document only: always returns
  return out;
}

}  // namespace carecard
