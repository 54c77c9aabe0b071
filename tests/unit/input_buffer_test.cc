// The receive buffer of a native connection: frames handed out of it
// without a copy keep their bytes whatever the buffer does next, the bytes
// they hold are counted and limited, and room announced for a large frame
// is taken from the budget and given back.
#include "transport/input_buffer.h"

#include <gtest/gtest.h>
#include <zmq.h>

#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace plantd::transport {
namespace {

// Appends `bytes` to `buffer` as a read would.
void Append(InputBuffer& buffer, const std::string& bytes) {
  uint8_t* at = buffer.Reserve(bytes.size());
  std::memcpy(at, bytes.data(), bytes.size());
  buffer.Commit(bytes.size());
}

// Takes the first `n` bytes out as a frame that refers to the buffer.
zmq_msg_t TakeShared(InputBuffer& buffer, size_t n) {
  zmq_msg_t msg;
  InputBlock* block = buffer.Share();
  EXPECT_NE(block, nullptr);
  if (block == nullptr) {
    zmq_msg_init_size(&msg, n);
    std::memcpy(zmq_msg_data(&msg), buffer.data(), n);
  } else {
    EXPECT_EQ(zmq_msg_init_data(&msg, const_cast<uint8_t*>(buffer.data()), n,
                                &InputBlock::FreeFrame, block),
              0);
  }
  buffer.Consume(n);
  return msg;
}

std::string View(zmq_msg_t& msg) {
  return {static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg)};
}

class InputBufferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    buffer_.set_tally(&tally_);
    buffer_.set_budget(budget_);
  }

  int64_t tally_ = 0;
  std::shared_ptr<BufferBudget> budget_ = BufferBudget::Make({});
  InputBuffer buffer_;
};

TEST_F(InputBufferTest, AFrameHandedOutKeepsItsBytesWhileTheBufferIsReusedAndGrows) {
  const std::string first(3000, 'a');
  Append(buffer_, first);
  zmq_msg_t held = TakeShared(buffer_, first.size());
  EXPECT_TRUE(buffer_.empty());
  // Drained: an unshared buffer would start again at its front, over the
  // held frame. Then it must grow, compact and grow again.
  for (int i = 0; i < 50; ++i) {
    Append(buffer_, std::string(1000 + i * 997, static_cast<char>('b' + i % 20)));
    buffer_.Consume(buffer_.size() / 2);
  }
  EXPECT_EQ(View(held), first);
  zmq_msg_close(&held);
}

TEST_F(InputBufferTest, SharedBytesCountWhileAFrameHoldsItsBlockAndReturnToZero) {
  Append(buffer_, std::string(8192, 'x'));
  EXPECT_EQ(budget_->shared_bytes(), 0);
  zmq_msg_t a = TakeShared(buffer_, 4096);
  zmq_msg_t b = TakeShared(buffer_, 4096);
  EXPECT_GE(budget_->shared_bytes(), 8192);  // the block, counted once
  EXPECT_LT(budget_->shared_bytes(), 2 * 8192 + 4096);
  buffer_.Release();  // the connection closes first: the frames keep it
  EXPECT_GE(budget_->shared_bytes(), 8192);
  EXPECT_EQ(View(a), std::string(4096, 'x'));
  zmq_msg_close(&a);
  EXPECT_GT(budget_->shared_bytes(), 0);
  zmq_msg_close(&b);
  EXPECT_EQ(budget_->shared_bytes(), 0);
  EXPECT_EQ(tally_, 0);
}

// A connection that goes quiet once its frames have left holds nothing
// counted: drained while frames held its block, it let them keep it.
TEST_F(InputBufferTest, ADrainedBufferLeavesItsBlockToTheFramesThatHoldIt) {
  Append(buffer_, std::string(4096, 'x'));
  zmq_msg_t a = TakeShared(buffer_, 4096);
  EXPECT_GT(budget_->shared_bytes(), 0);
  zmq_msg_close(&a);
  EXPECT_EQ(budget_->shared_bytes(), 0);
  // A block no frame held any more when it drained is kept and reused.
  Append(buffer_, std::string(100, 'y'));
  const uint8_t* at = buffer_.data();
  buffer_.Consume(100);
  Append(buffer_, std::string(100, 'z'));
  EXPECT_EQ(buffer_.data(), at);
  buffer_.Consume(100);
  EXPECT_EQ(budget_->shared_bytes(), 0);
}

// The attack: a peer whose frames stay queued (a service with no worker)
// while the rest of what it sends is dropped makes each small frame hold a
// whole receive block. Past the limit, frames are copied.
TEST_F(InputBufferTest, PastTheSharedLimitFramesAreCopiedAndHoldNothing) {
  budget_ = BufferBudget::Make({.max_shared_input_bytes = 256 * 1024});
  buffer_.set_budget(budget_);
  std::vector<zmq_msg_t> held;
  size_t copied = 0;
  for (int i = 0; i < 200; ++i) {
    Append(buffer_, std::string(2048, static_cast<char>('a' + i % 26)));
    zmq_msg_t msg;
    if (InputBlock* block = buffer_.Share()) {
      zmq_msg_init_data(&msg, const_cast<uint8_t*>(buffer_.data()), 2048, &InputBlock::FreeFrame,
                        block);
    } else {
      ++copied;
      zmq_msg_init_size(&msg, 2048);
      std::memcpy(zmq_msg_data(&msg), buffer_.data(), 2048);
    }
    buffer_.Consume(2048);
    held.push_back(msg);
    // Filler that is read and dropped, so that the next frame lands in a
    // fresh stretch of the block, or a new block.
    Append(buffer_, std::string(60 * 1024, '-'));
    buffer_.Consume(60 * 1024);
  }
  EXPECT_GT(copied, 0u);
  EXPECT_EQ(budget_->frames_copied_past_limit(), copied);
  // At most one block beyond the limit: the one being read into.
  EXPECT_LE(budget_->shared_bytes(), 256 * 1024 + 128 * 1024);
  for (size_t i = 0; i < held.size(); ++i) {
    EXPECT_EQ(View(held[i]), std::string(2048, static_cast<char>('a' + i % 26))) << i;
    zmq_msg_close(&held[i]);
  }
  buffer_.Release();
  EXPECT_EQ(budget_->shared_bytes(), 0);
}

TEST_F(InputBufferTest, FramesReleasedOnAnotherThreadFreeTheirBlock) {
  std::vector<zmq_msg_t> frames;
  for (int i = 0; i < 64; ++i) {
    Append(buffer_, std::string(4096, static_cast<char>('a' + i % 26)));
    frames.push_back(TakeShared(buffer_, 4096));
  }
  std::thread other([&] {
    for (size_t i = 0; i < frames.size(); ++i) {
      EXPECT_EQ(View(frames[i]), std::string(4096, static_cast<char>('a' + i % 26)));
      zmq_msg_close(&frames[i]);
    }
  });
  // Meanwhile the owner goes on reading.
  for (int i = 0; i < 64; ++i) {
    Append(buffer_, std::string(5000, 'z'));
    buffer_.Consume(5000);
  }
  other.join();
  buffer_.Release();
  EXPECT_EQ(budget_->shared_bytes(), 0);
}

TEST_F(InputBufferTest, AnnouncedRoomIsTakenOnceAndGivenBackAsBytesArrive) {
  budget_ = BufferBudget::Make({.max_announced_input_bytes = 1 << 20});
  buffer_.set_budget(budget_);
  Append(buffer_, "header");
  buffer_.ReserveAnnounced(600 * 1024, 0);
  EXPECT_EQ(budget_->announced_bytes(), 600 * 1024);
  EXPECT_GE(buffer_.free_space(), 600u * 1024);
  const uint8_t* at = buffer_.data();
  Append(buffer_, std::string(100 * 1024, 'b'));
  EXPECT_EQ(buffer_.data(), at) << "received in place, not moved";
  EXPECT_EQ(budget_->announced_bytes(), 500 * 1024);
  // A second buffer cannot have what the first holds.
  int64_t other_tally = 0;
  InputBuffer other;
  other.set_tally(&other_tally);
  other.set_budget(budget_);
  Append(other, "h");
  const size_t room = other.free_space();
  other.ReserveAnnounced(600 * 1024, 0);
  EXPECT_EQ(other.free_space(), room) << "past the limit, nothing is set aside";
  EXPECT_EQ(budget_->announce_declined(), 1u);
  other.Release();
  buffer_.Release();
  EXPECT_EQ(budget_->announced_bytes(), 0);
}

TEST_F(InputBufferTest, GrowingKeepsWhatArrivedSoFar) {
  std::string all;
  for (int i = 0; i < 40; ++i) {
    const std::string piece(50 * 1024, static_cast<char>('a' + i % 26));
    Append(buffer_, piece);
    all += piece;
  }
  ASSERT_EQ(buffer_.size(), all.size());
  EXPECT_EQ(std::memcmp(buffer_.data(), all.data(), all.size()), 0);
  EXPECT_EQ(tally_, static_cast<int64_t>(all.size()));
  buffer_.Consume(all.size());
  EXPECT_EQ(tally_, 0);
}

}  // namespace
}  // namespace plantd::transport
