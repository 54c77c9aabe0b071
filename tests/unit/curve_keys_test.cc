#include "transport/curve_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <zmq.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace plantd::transport {
namespace {

// A key pair from libzmq: Z85 text and the raw bytes it stands for.
struct ZmqKeys {
  std::string public_z85;
  std::string secret_z85;
};

ZmqKeys MakeZmqKeys() {
  char public_key[41];
  char secret_key[41];
  EXPECT_EQ(zmq_curve_keypair(public_key, secret_key), 0);
  return {public_key, secret_key};
}

std::string Decoded(const std::string& z85) {
  std::string raw;
  EXPECT_TRUE(Z85Decode(z85, &raw));
  return raw;
}

// A certificate as czmq's zcert_save writes it.
std::string Certificate(const ZmqKeys& keys, bool with_secret) {
  std::string text =
      "#   ****  Generated on 2024-01-01 00:00:00 by CZMQ  ****\n"
      "#   ZeroMQ CURVE Public Certificate\n"
      "\n"
      "metadata\n"
      "    name = \"broker\"\n"
      "curve\n"
      "    public-key = \"" +
      keys.public_z85 + "\"\n";
  if (with_secret) text += "    secret-key = \"" + keys.secret_z85 + "\"\n";
  return text;
}

// RFC 32: Z85 of the spec's test vector, and libzmq agreeing with us.
TEST(CurveKeysTest, Z85MatchesTheSpecAndLibzmq) {
  const std::string hello("\x86\x4F\xD2\x6F\xB5\x59\xF7\x5B", 8);
  std::string text;
  ASSERT_TRUE(Z85Encode(hello, &text));
  EXPECT_EQ(text, "HelloWorld");
  EXPECT_EQ(Decoded("HelloWorld"), hello);

  for (int i = 0; i < 20; ++i) {
    const ZmqKeys keys = MakeZmqKeys();
    const std::string raw = Decoded(keys.public_z85);
    ASSERT_EQ(raw.size(), kCurveKeySize);
    char zmq_text[41];
    ASSERT_NE(zmq_z85_encode(zmq_text, reinterpret_cast<const uint8_t*>(raw.data()), raw.size()),
              nullptr);
    ASSERT_TRUE(Z85Encode(raw, &text));
    EXPECT_EQ(text, zmq_text);
    EXPECT_TRUE(KeyPairMatches(raw, Decoded(keys.secret_z85)));
  }
}

TEST(CurveKeysTest, Z85RefusesBadLengthsAndCharacters) {
  std::string out;
  EXPECT_FALSE(Z85Encode("abc", &out));
  EXPECT_FALSE(Z85Decode("abcd", &out));
  EXPECT_FALSE(Z85Decode("abc d", &out));  // space is not in the alphabet
  EXPECT_FALSE(Z85Decode("%%%%%", &out));  // above 2^32 - 1
}

class CurveKeyFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/plantd-curve-keys-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }

  std::string dir_;
};

TEST_F(CurveKeyFilesTest, ReadsZcertPublicAndSecretFiles) {
  const ZmqKeys keys = MakeZmqKeys();
  const std::string public_path = Write("broker.key", Certificate(keys, false), 0644);
  const std::string secret_path = Write("broker.key_secret", Certificate(keys, true));

  std::string public_key;
  ASSERT_TRUE(LoadPublicKeyFile(public_path, &public_key).ok());
  EXPECT_EQ(public_key, Decoded(keys.public_z85));

  CurveKeyPair pair;
  const Status status = LoadSecretKeyFile(secret_path, &pair);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(pair.public_key, Decoded(keys.public_z85));
  EXPECT_EQ(pair.secret_key, Decoded(keys.secret_z85));
}

// Like ssh: a secret key others can read is not secret, and the message
// says how to fix it.
TEST_F(CurveKeyFilesTest, RefusesSecretFileReadableByOthers) {
  const std::string path = Write("broker.key_secret", Certificate(MakeZmqKeys(), true), 0644);
  CurveKeyPair pair;
  const Status status = LoadSecretKeyFile(path, &pair);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("0644"), std::string::npos) << status.message();
  EXPECT_NE(status.message().find("chmod 600"), std::string::npos) << status.message();
  EXPECT_TRUE(pair.secret_key.empty());
}

TEST_F(CurveKeyFilesTest, RefusesPublicCertificateAsSecretAndMismatchedPair) {
  CurveKeyPair pair;
  const Status no_secret =
      LoadSecretKeyFile(Write("public", Certificate(MakeZmqKeys(), false)), &pair);
  ASSERT_FALSE(no_secret.ok());
  EXPECT_NE(no_secret.message().find("no secret-key"), std::string::npos);

  ZmqKeys mixed = MakeZmqKeys();
  mixed.secret_z85 = MakeZmqKeys().secret_z85;
  const Status mismatch = LoadSecretKeyFile(Write("mixed", Certificate(mixed, true)), &pair);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_NE(mismatch.message().find("not the secret"), std::string::npos);
}

TEST_F(CurveKeyFilesTest, MalformedLineIsNamedWithFileAndLine) {
  const std::string path = Write("bad.key",
                                 "curve\n"
                                 "    public-key = \"tooshort\"\n");
  std::string key;
  const Status status = LoadPublicKeyFile(path, &key);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(path + ":2:"), std::string::npos) << status.message();

  const std::string unquoted = Write("unterminated.key",
                                     "# comment\n"
                                     "curve\n"
                                     "    public-key = \"abc\n");
  const Status quote = LoadPublicKeyFile(unquoted, &key);
  ASSERT_FALSE(quote.ok());
  EXPECT_NE(quote.message().find(unquoted + ":3:"), std::string::npos) << quote.message();

  const Status missing = LoadPublicKeyFile(Write("empty.key", "metadata\n"), &key);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.message().find("no public-key"), std::string::npos);
}

TEST_F(CurveKeyFilesTest, LoadsEveryFileOfADirectoryAndNamesTheBadOne) {
  const ZmqKeys a = MakeZmqKeys();
  const ZmqKeys b = MakeZmqKeys();
  Write("a.key", Certificate(a, false), 0644);
  Write("b.key", Certificate(b, false), 0644);
  std::vector<CurvePublicKeyFile> keys;
  Status status = LoadPublicKeysFromDirectory(dir_, &keys);
  ASSERT_TRUE(status.ok()) << status.message();
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].path, dir_ + "/a.key");
  EXPECT_EQ(keys[0].public_key, Decoded(a.public_z85));
  EXPECT_EQ(keys[1].public_key, Decoded(b.public_z85));

  const std::string bad = Write("c.key", "curve\n    public key = \"x\"\n", 0644);
  status = LoadPublicKeysFromDirectory(dir_, &keys);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find(bad + ":2:"), std::string::npos) << status.message();
}

}  // namespace
}  // namespace plantd::transport
