// CURVE keys as people handle them: Z85 text (RFC 32/Z85) and the
// certificate files czmq's zcert_save writes (ZPL, RFC 4/ZPL):
//
//   # comments
//   metadata
//       name = "broker"
//   curve
//       public-key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7"
//       secret-key = "JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6"
//
// The public file has only public-key; the "_secret" file has both. Keys in
// memory are the 32 raw bytes. Every error names the file (and line) and
// says what is wrong with it. Needs only libzmq and libc: libplantd (the
// client library) reads key files with it too.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace plantd::transport {

inline constexpr size_t kCurveKeySize = 32;
inline constexpr size_t kCurveKeyZ85Size = 40;

struct CurveKeyPair {
  std::string public_key;  // 32 raw bytes
  std::string secret_key;  // 32 raw bytes; erase it when done (explicit_bzero)
};

// Z85 (RFC 32): 4 bytes become 5 printable characters. Encode requires a
// size that is a multiple of 4, decode a multiple of 5; false otherwise or
// on a character outside the alphabet or a group above 2^32 - 1.
bool Z85Encode(std::string_view data, std::string* text);
bool Z85Decode(std::string_view text, std::string* data);

// Whether `secret_key` is the secret half of `public_key` (both raw).
bool KeyPairMatches(std::string_view public_key, std::string_view secret_key);

// Reads the public key of a zcert file (public or secret certificate).
Status LoadPublicKeyFile(const std::string& path, std::string* public_key);

// Reads a secret certificate. Refuses a file that group or others may read
// or write, as ssh does with private keys: the key would not be secret.
Status LoadSecretKeyFile(const std::string& path, CurveKeyPair* keys);

struct CurvePublicKeyFile {
  std::string path;
  std::string public_key;  // 32 raw bytes
};
// Reads every regular file in `directory` as a public certificate (in name
// order), e.g. the clients a broker lets in. One malformed file is an error:
// a key silently skipped would lock a client out with no explanation.
Status LoadPublicKeysFromDirectory(const std::string& directory,
                                   std::vector<CurvePublicKeyFile>* keys);

}  // namespace plantd::transport
