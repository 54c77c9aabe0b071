#include "config/endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "common/units.h"

namespace plantd {
namespace {

constexpr char kExpected[] =
    "expected tcp://HOST:PORT (HOST an address, a name or *, PORT 1-65535), ipc://PATH or "
    "inproc://NAME, optionally prefixed by @ (bind) or > (connect)";

bool IsWildcard(const std::string& host) {
  return host == "*" || host == "0.0.0.0" || host == "[::]" || host == "::";
}

}  // namespace

Result<Endpoint> ParseEndpoint(std::string_view text) {
  Endpoint ep;
  if (!text.empty() && (text.front() == '@' || text.front() == '>')) {
    ep.bind = text.front() == '@';
    text.remove_prefix(1);
  }
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte <= 0x20 || byte == 0x7f) {
      return Status::Error("an endpoint has no spaces, line breaks or control characters");
    }
  }
  ep.address = std::string(text);
  const size_t scheme_end = text.find("://");
  if (scheme_end == std::string_view::npos) return Status::Error(kExpected);
  const std::string_view scheme = text.substr(0, scheme_end);
  const std::string_view rest = text.substr(scheme_end + 3);
  if (scheme == "ipc" || scheme == "inproc") {
    ep.transport = scheme == "ipc" ? Endpoint::Transport::kIpc : Endpoint::Transport::kInproc;
    if (rest.empty()) return Status::Error(kExpected);
    ep.path = std::string(rest);
    return ep;
  }
  if (scheme != "tcp") return Status::Error(kExpected);
  const size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return Status::Error(kExpected);
  ep.host = std::string(rest.substr(0, colon));
  auto port = ParseUnsigned(rest.substr(colon + 1));
  if (!port.ok() || port.value() < 1 || port.value() > 65535) {
    return Status::Error(kExpected);
  }
  ep.port = static_cast<int>(port.value());
  if (!ep.bind && IsWildcard(ep.host)) {
    return Status::Error("a connecting endpoint needs a real host, not *");
  }
  return ep;
}

bool Endpoint::IsLocal() const {
  if (transport != Transport::kTcp) return true;
  if (host == "localhost") return true;
  // An address, parsed: a name that merely starts with "127." may resolve
  // to anything.
  std::string literal = host;
  if (literal.size() > 2 && literal.front() == '[' && literal.back() == ']') {
    literal = literal.substr(1, literal.size() - 2);
  }
  in_addr v4{};
  if (inet_pton(AF_INET, literal.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  return inet_pton(AF_INET6, literal.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

bool Endpoint::ConflictsWith(const Endpoint& other) const {
  if (!bind || !other.bind || transport != other.transport) return false;
  if (transport != Transport::kTcp) return path == other.path;
  if (port != other.port) return false;
  return host == other.host || IsWildcard(host) || IsWildcard(other.host);
}

}  // namespace plantd
