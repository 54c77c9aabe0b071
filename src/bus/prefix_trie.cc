#include "bus/prefix_trie.h"

#include <algorithm>

namespace plantd::bus {
namespace {

size_t CommonPrefixLength(std::string_view a, std::string_view b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

uint8_t FirstByte(std::string_view s) { return static_cast<uint8_t>(s.front()); }

}  // namespace

PrefixTrie::PrefixTrie() : root_(std::make_unique<Node>()) {}

PrefixTrie::~PrefixTrie() {
  // Iterative, so that a deep chain does not recurse once per node.
  std::vector<std::unique_ptr<Node>> pending;
  pending.push_back(std::move(root_));
  while (!pending.empty()) {
    std::unique_ptr<Node> node = std::move(pending.back());
    pending.pop_back();
    for (auto& child : node->children) pending.push_back(std::move(child));
  }
}

PrefixTrie::Node* PrefixTrie::FindChild(const Node& node, uint8_t byte, size_t* index) {
  auto it = std::lower_bound(
      node.children.begin(), node.children.end(), byte,
      [](const std::unique_ptr<Node>& child, uint8_t b) { return FirstByte(child->label) < b; });
  *index = static_cast<size_t>(it - node.children.begin());
  if (it == node.children.end() || FirstByte((*it)->label) != byte) return nullptr;
  return it->get();
}

bool PrefixTrie::Add(std::string_view prefix, SubscriberId subscriber) {
  Node* node = root_.get();
  std::string_view rest = prefix;
  while (!rest.empty()) {
    size_t index = 0;
    Node* child = FindChild(*node, FirstByte(rest), &index);
    if (child == nullptr) {
      auto leaf = std::make_unique<Node>();
      leaf->label = std::string(rest);
      leaf->parent = node;
      Node* added = leaf.get();
      node->children.insert(node->children.begin() + static_cast<ptrdiff_t>(index),
                            std::move(leaf));
      ++nodes_;
      node = added;
      break;
    }
    const size_t common = CommonPrefixLength(child->label, rest);
    if (common < child->label.size()) {
      // Split the edge: a new node for the shared bytes, the old child below it.
      auto middle = std::make_unique<Node>();
      middle->label = child->label.substr(0, common);
      middle->parent = node;
      child->label.erase(0, common);
      child->parent = middle.get();
      middle->children.push_back(std::move(node->children[index]));
      node->children[index] = std::move(middle);
      ++nodes_;
      child = node->children[index].get();
    }
    node = child;
    rest.remove_prefix(common);
  }
  if (subscriber >= seen_.size()) seen_.resize(subscriber + 1, 0);
  ++subscriptions_;
  for (Holder& h : node->holders) {
    if (h.id == subscriber) {
      ++h.count;
      return false;
    }
  }
  node->holders.push_back({subscriber, 1});
  if (node->holders.size() > 1) return false;
  ++active_;
  return true;
}

const PrefixTrie::Node* PrefixTrie::Find(std::string_view prefix) const {
  const Node* node = root_.get();
  std::string_view rest = prefix;
  while (!rest.empty()) {
    size_t index = 0;
    const Node* child = FindChild(*node, FirstByte(rest), &index);
    if (child == nullptr || rest.size() < child->label.size() ||
        rest.compare(0, child->label.size(), child->label) != 0) {
      return nullptr;
    }
    rest.remove_prefix(child->label.size());
    node = child;
  }
  return node;
}

uint32_t PrefixTrie::Count(std::string_view prefix, SubscriberId subscriber) const {
  const Node* node = Find(prefix);
  if (node == nullptr) return 0;
  for (const Holder& h : node->holders) {
    if (h.id == subscriber) return h.count;
  }
  return 0;
}

bool PrefixTrie::Remove(std::string_view prefix, SubscriberId subscriber, bool* inactive) {
  *inactive = false;
  Node* node = const_cast<Node*>(Find(prefix));
  if (node == nullptr) return false;
  auto it = std::find_if(node->holders.begin(), node->holders.end(),
                         [subscriber](const Holder& h) { return h.id == subscriber; });
  if (it == node->holders.end()) return false;
  --subscriptions_;
  if (--it->count > 0) return true;
  *it = node->holders.back();
  node->holders.pop_back();
  if (node->holders.empty()) {
    --active_;
    *inactive = true;
    Compact(node);
  }
  return true;
}

void PrefixTrie::Compact(Node* node) {
  while (node != root_.get() && node->holders.empty() && node->children.size() <= 1) {
    Node* parent = node->parent;
    size_t index = 0;
    FindChild(*parent, FirstByte(node->label), &index);
    if (node->children.empty()) {
      parent->children.erase(parent->children.begin() + static_cast<ptrdiff_t>(index));
      --nodes_;
      node = parent;  // it may now be a bare branch point itself
      continue;
    }
    // A bare pass-through: its only child takes its place, longer by its label.
    std::unique_ptr<Node> child = std::move(node->children.front());
    child->label.insert(0, node->label);
    child->parent = parent;
    parent->children[index] = std::move(child);  // frees `node`
    --nodes_;
    break;
  }
}

void PrefixTrie::Match(std::string_view topic, std::vector<SubscriberId>* out) {
  out->clear();
  if (++epoch_ == 0) {  // wrapped: forget every old mark
    std::fill(seen_.begin(), seen_.end(), 0);
    epoch_ = 1;
  }
  const Node* node = root_.get();
  std::string_view rest = topic;
  while (true) {
    for (const Holder& h : node->holders) {
      if (seen_[h.id] == epoch_) continue;
      seen_[h.id] = epoch_;
      out->push_back(h.id);
    }
    if (rest.empty()) return;
    size_t index = 0;
    const Node* child = FindChild(*node, FirstByte(rest), &index);
    if (child == nullptr || rest.size() < child->label.size() ||
        rest.compare(0, child->label.size(), child->label) != 0) {
      return;
    }
    rest.remove_prefix(child->label.size());
    node = child;
  }
}

}  // namespace plantd::bus
