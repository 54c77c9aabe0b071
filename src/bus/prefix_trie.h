// The subscriptions of one bus, matched by topic prefix.
//
// A radix tree over topic bytes: each node is a distinct subscribed prefix
// (or a branch point between two), labelled with the bytes that lead to it
// from its parent, and lists the subscribers whose subscription ends there,
// each with a count (a subscriber may subscribe to one prefix more than
// once, as libzmq's XPUB counts them). Matching a message walks the nodes on
// its topic's path only, so its cost grows with the topic's length and the
// number of subscribers it reaches, never with the number of subscriptions
// held for other topics: one subscriber's 100,000 subscriptions cannot slow
// the others down.
//
// Topics are bytes: no separator, no wildcard, no text encoding. The empty
// prefix matches every topic.
//
// Not thread-safe: the bus thread owns it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace plantd::bus {

class PrefixTrie {
 public:
  // Small dense numbers chosen by the caller (slots), so that matching can
  // mark subscribers in a flat array.
  using SubscriberId = uint32_t;

  PrefixTrie();
  ~PrefixTrie();
  PrefixTrie(const PrefixTrie&) = delete;
  PrefixTrie& operator=(const PrefixTrie&) = delete;

  // One more subscription of `subscriber` to `prefix`. Returns true when no
  // subscriber held `prefix` before (it becomes active: tell the publishers).
  bool Add(std::string_view prefix, SubscriberId subscriber);

  // One subscription less. Returns false when `subscriber` held none on
  // `prefix` (nothing changes). `*inactive` is set when no subscriber holds
  // `prefix` any more (tell the publishers).
  bool Remove(std::string_view prefix, SubscriberId subscriber, bool* inactive);

  // Replaces `*out` with every subscriber holding a prefix of `topic` (the
  // empty prefix included), each once, however many of its prefixes match.
  void Match(std::string_view topic, std::vector<SubscriberId>* out);

  // How many subscriptions `subscriber` holds on exactly `prefix`.
  uint32_t Count(std::string_view prefix, SubscriberId subscriber) const;

  // Calls f(std::string_view prefix) for every prefix some subscriber holds.
  // Iterative: a prefix may be as deep as it is long.
  template <typename F>
  void ForEachActive(F&& f) const {
    std::string path;
    std::vector<std::pair<const Node*, size_t>> stack{{root_.get(), 0}};
    while (!stack.empty()) {
      auto [node, length] = stack.back();
      stack.pop_back();
      path.resize(length);
      path.append(node->label);
      if (!node->holders.empty()) f(std::string_view(path));
      for (const auto& child : node->children) stack.emplace_back(child.get(), path.size());
    }
  }

  size_t subscriptions() const { return subscriptions_; }  // duplicates included
  size_t active_prefixes() const { return active_; }
  size_t node_count() const { return nodes_; }  // for tests: shrinks back on Remove

 private:
  struct Holder {
    SubscriberId id;
    uint32_t count;
  };
  struct Node {
    std::string label;  // bytes from the parent to here
    Node* parent = nullptr;
    std::vector<std::unique_ptr<Node>> children;  // sorted by label[0]
    std::vector<Holder> holders;                  // subscriptions ending here
  };

  // The child of `node` whose label starts with `byte`, or null; `*index`
  // is where it is or would go.
  static Node* FindChild(const Node& node, uint8_t byte, size_t* index);
  // The node for exactly `prefix`, or null.
  const Node* Find(std::string_view prefix) const;
  // Removes nodes left without holders or children, and merges a node with
  // its only child, walking up from `node`.
  void Compact(Node* node);

  std::unique_ptr<Node> root_;  // the empty prefix
  size_t subscriptions_ = 0;
  size_t active_ = 0;
  size_t nodes_ = 1;
  // Match(): seen_[id] == epoch_ when `id` is in this round's output.
  std::vector<uint32_t> seen_;
  uint32_t epoch_ = 0;
};

}  // namespace plantd::bus
