// The one table of configuration keys. Each row gives a key's type, range,
// default (read from options.h), environment variable, flag and a one-line
// doc; the YAML loader, the PLANTD_BROKER_* overrides, the command-line
// flags, --help, --print-config, --print-keys (docs/configuration.md and the
// README table) and Validate() all read it, so they cannot drift apart.
//
// Adding an option: declare the field with its default in options.h, then
// add one row to BrokerKeys() (or BusKeys() for a per-bus key) in
// config_keys.cc. The docs test fails until docs/configuration.md and
// README.md are regenerated with `plantd-broker --print-keys markdown`.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "config/options.h"

namespace plantd {

enum class KeyType {
  kString,
  kEndpoint,  // a ZeroMQ endpoint (endpoint.h); checked by Validate
  kInteger,   // a decimal integer in [min, max]
  kBytes,     // an integer with an optional unit (16MiB), in [min, max] bytes
  kDuration,  // a number with a unit (250ms, 2.5s), in [min, max] milliseconds
  kBool,      // true/false, yes/no, on/off
  kChoice,    // one of `choices`
  kList,      // a YAML sequence: of strings (`items`), or the buses
};

// One key that configures a Target (BrokerOptions, or BusOptions for the
// `buses[].KEY` rows).
template <typename Target>
struct KeySpec {
  std::string key;       // as written in YAML, nested keys dotted
  std::string alias_of;  // non-empty: an older spelling of that key, not documented alone
  KeyType type = KeyType::kString;
  uint64_t min = 0;  // kInteger: the value; kBytes: bytes; kDuration: milliseconds
  uint64_t max = 0;
  std::vector<std::string> choices;  // kChoice
  std::string env;                   // PLANTD_BROKER_... or empty
  std::string flag;                  // long flag without "--", or empty
  std::string doc;                   // one line, for --help and the docs
  // Parses `text` and sets the field; the error says what is expected,
  // with the range. Empty for kList.
  std::function<Status(Target&, std::string_view text)> set;
  // The field as text that `set` reads back. Empty for kList and aliases.
  std::function<std::string(const Target&)> get;
  // The field's range check on already-typed options (options built in
  // code, or the result of loading): Ok or the same error `set` gives.
  std::function<Status(const Target&)> check;
  // A kList of strings (extra_endpoints, security.authorized_keys): the
  // field, read and written whole, and what one item is ("endpoint"). Empty
  // for other rows, and for `buses`, which the loader reads itself.
  std::function<const std::vector<std::string>&(const Target&)> items;
  std::function<std::vector<std::string>&(Target&)> mutable_items;
  std::string item;

  const std::string& canonical() const { return alias_of.empty() ? key : alias_of; }
};

// Every key of BrokerOptions, grouped so that each section ("log.",
// "health.", ...) is contiguous: rendering relies on it.
const std::vector<KeySpec<BrokerOptions>>& BrokerKeys();
// The keys of one entry of `buses`.
const std::vector<KeySpec<BusOptions>>& BusKeys();

// nullptr when `key` is not in the table (aliases included).
const KeySpec<BrokerOptions>* FindBrokerKey(std::string_view key);
const KeySpec<BusOptions>* FindBusKey(std::string_view field);
// True when some key starts with `section` + "." (e.g. "limits").
bool IsKeySection(std::string_view section);

// "an integer from 1 to 1000", "a size from 64B to 4GiB (16MiB, 512KiB or
// bytes)", "one of native, zmq": what a valid value looks like.
template <typename Target>
std::string Expectation(const KeySpec<Target>& spec);

// What the docs and --help show for one documented key.
struct KeyDoc {
  std::string key;  // "limits.max_buffered_bytes", "buses[].send_hwm"
  std::string type;
  std::string range;  // empty when the type says it all
  std::string default_value;
  std::string env;
  std::string flag;
  std::string doc;
  std::vector<std::string> aliases;
};
std::vector<KeyDoc> DocumentedKeys();

// Generated documentation: `format` is "markdown" (the full reference in
// docs/configuration.md), "summary" (the README table), or roff for the man
// pages (docs/man, cmake/ManPages.cmake): "man" (the KEYS section of
// plantd-broker.yaml(5)), "man-options" (the configuration flags of
// plantd-broker(8)) and "man-environment" (its ENVIRONMENT). Empty for any
// other format.
std::string RenderKeys(std::string_view format);

}  // namespace plantd
