// Tests of the loader and the augmentation: coverage across ranks, pixels against the stored
// images, 1-rank vs 2-rank bit identity, thread independence, resume mid-epoch, pad_to.
#include <algorithm>
#include <numeric>

#include <lmt/data/augment.h>
#include <lmt/data/loader.h>

#include "test_util.h"

namespace lmt::data {
namespace {
using testing::pattern_bytes;
using testing::ScratchDir;

constexpr int64_t kN = 37, kH = 5, kW = 6, kC = 3;

struct Fixture {
  ScratchDir dir;
  std::string path = dir.file("train.h5");
  std::vector<uint8_t> images = pattern_bytes(kN * kH * kW * kC, 11);
  std::vector<int32_t> labels;
  Fixture() {
    for (int64_t i = 0; i < kN; ++i) labels.push_back(static_cast<int32_t>(i % 4));
    DatasetInfo info;
    info.size = kN;
    info.height = kH;
    info.width = kW;
    info.channels = kC;
    info.num_classes = 4;
    info.source = "synthetic";
    info.class_names = {"a", "b", "c", "d"};
    write_dataset(path, info, images.data(), labels.data());
  }
  // The stored image as float CHW [C,H,W] / 255, built with ATen (independent of the renderer).
  at::Tensor reference(int64_t index) const {
    at::Tensor hwc = at::from_blob(const_cast<uint8_t*>(images.data()) + index * kH * kW * kC,
                                   {kH, kW, kC}, at::kByte);
    return hwc.permute({2, 0, 1}).to(at::kFloat) / 255.0f;
  }
};

std::vector<Batch> whole_epoch(Loader& loader, int64_t epoch, int64_t first_step = 0) {
  loader.start_epoch(epoch, first_step);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

TEST(Loader, EverySampleOnceAcrossThreeRanksWithoutDropLast) {
  Fixture f;
  std::vector<int64_t> seen;
  int64_t steps = -1;
  for (int64_t rank = 0; rank < 3; ++rank) {
    Loader loader(f.path, LoaderOptions().batch_size(6).rank(rank).world_size(3).drop_last(false));
    const auto batches = whole_epoch(loader, 2);
    if (steps >= 0) {
      EXPECT_EQ(static_cast<int64_t>(batches.size()), steps);  // same step count on every rank
    }
    steps = static_cast<int64_t>(batches.size());
    for (const Batch& b : batches)
      for (int64_t i = 0; i < b.indices.size(0); ++i) seen.push_back(b.indices[i].item<int64_t>());
  }
  EXPECT_EQ(steps, 7);
  std::sort(seen.begin(), seen.end());
  std::vector<int64_t> all(kN);
  std::iota(all.begin(), all.end(), int64_t{0});
  EXPECT_EQ(seen, all);
}

TEST(Loader, BatchesHoldTheStoredPixelsAndLabels) {
  Fixture f;
  Loader loader(f.path, LoaderOptions().batch_size(8).seed(5));
  for (const Batch& b : whole_epoch(loader, 0)) {
    ASSERT_EQ(b.images.sizes(), (std::vector<int64_t>{8, kC, kH, kW}));
    ASSERT_EQ(b.images.scalar_type(), at::kFloat);
    ASSERT_EQ(b.labels.scalar_type(), at::kLong);
    EXPECT_EQ(b.global_batch_size, 8);
    for (int64_t i = 0; i < 8; ++i) {
      const int64_t index = b.indices[i].item<int64_t>();
      EXPECT_TRUE(at::equal(b.images[i], f.reference(index)));
      EXPECT_EQ(b.labels[i].item<int64_t>(), f.labels[index]);
    }
  }
}

TEST(Loader, AugmentationMatchesAnAtenReference) {
  // pad_to 9x8 (centred), crop padding 2, flip: rebuilt with constant_pad_nd, narrow and flip.
  Fixture f;
  const int64_t p = 2, oh = 9, ow = 8;
  Loader loader(
      f.path,
      LoaderOptions().batch_size(4).seed(3).random_crop_padding(p).horizontal_flip(true).pad_to(
          oh, ow));
  int flips = 0, shifts = 0;
  for (const Batch& b : whole_epoch(loader, 1)) {
    for (int64_t i = 0; i < b.images.size(0); ++i) {
      const int64_t position = b.step * 4 + i;
      const SampleAugment a = sample_augment(3, 1, position, p, true);
      const int64_t top = (oh - kH) / 2, left = (ow - kW) / 2;
      at::Tensor x = at::constant_pad_nd(f.reference(b.indices[i].item<int64_t>()),
                                         {left, ow - kW - left, top, oh - kH - top}, 0);
      x = at::constant_pad_nd(x, {p, p, p, p}, 0).narrow(1, a.crop_dy, oh).narrow(2, a.crop_dx, ow);
      if (a.flip) x = x.flip({2});
      EXPECT_TRUE(at::equal(b.images[i], x)) << "position " << position;
      flips += a.flip;
      shifts += (a.crop_dy != p || a.crop_dx != p);
    }
  }
  EXPECT_GT(flips, 0);  // the test exercised both branches
  EXPECT_GT(shifts, 0);
}

TEST(Loader, RenderSampleMatchesAtenAtEveryCropOffsetAndFlip) {
  // Every crop offset of a padding wider than the image (crops wholly outside it included) and
  // both flips, on an odd centring margin: the row-range renderer against the same ATen
  // composition, exactly (both divide the same byte by 255 in float).
  Fixture f;
  const int64_t p = 7, oh = 8, ow = 9;
  const ImageGeometry g{kH, kW, kC, oh, ow, p};
  const int64_t top = (oh - kH) / 2, left = (ow - kW) / 2;
  at::Tensor padded =
      at::constant_pad_nd(f.reference(5), {left, ow - kW - left, top, oh - kH - top}, 0);
  padded = at::constant_pad_nd(padded, {p, p, p, p}, 0);
  int blank = 0;
  for (int64_t dy = 0; dy <= 2 * p; ++dy)
    for (int64_t dx = 0; dx <= 2 * p; ++dx)
      for (bool flip : {false, true}) {
        SampleAugment a;
        a.crop_dy = dy;
        a.crop_dx = dx;
        a.flip = flip;
        at::Tensor out = at::full({kC, oh, ow}, -1.0f);  // every element must be written
        render_sample(f.images.data() + 5 * kH * kW * kC, g, a, out.data_ptr<float>());
        at::Tensor x = padded.narrow(1, dy, oh).narrow(2, dx, ow);
        if (flip) x = x.flip({2});
        EXPECT_TRUE(at::equal(out, x)) << "dy " << dy << " dx " << dx << " flip " << flip;
        blank += x.eq(0).all().item<bool>();
      }
  EXPECT_GT(blank, 0);  // some crops lie wholly in the padding
}

TEST(Loader, OneRankAndTwoRanksSeeBitIdenticalInputs) {
  Fixture f;
  auto options = [] {
    return LoaderOptions().batch_size(8).seed(17).random_crop_padding(2).horizontal_flip(true);
  };
  Loader single(f.path, options());
  Loader rank0(f.path, options().rank(0).world_size(2));
  Loader rank1(f.path, options().rank(1).world_size(2).threads(2));
  const auto all = whole_epoch(single, 4);
  const auto half0 = whole_epoch(rank0, 4);
  const auto half1 = whole_epoch(rank1, 4);
  ASSERT_EQ(all.size(), half0.size());
  ASSERT_EQ(all.size(), half1.size());
  for (size_t s = 0; s < all.size(); ++s) {
    EXPECT_TRUE(at::equal(all[s].images, at::cat({half0[s].images, half1[s].images})));
    EXPECT_TRUE(at::equal(all[s].indices, at::cat({half0[s].indices, half1[s].indices})));
    EXPECT_EQ(half0[s].global_batch_size, 8);
  }
}

TEST(Loader, ResultDoesNotDependOnThreadsPrefetchOrStorage) {
  Fixture f;
  auto options = [] {
    return LoaderOptions().batch_size(4).seed(2).random_crop_padding(1).horizontal_flip(true);
  };
  Loader inline_loader(f.path, options().prefetch(0));
  Loader threaded(f.path, options().threads(3).prefetch(5));
  Loader streaming(f.path, options().threads(2).in_memory_limit_bytes(0));
  const auto a = whole_epoch(inline_loader, 0);
  const auto b = whole_epoch(threaded, 0);
  const auto c = whole_epoch(streaming, 0);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.size(), c.size());
  for (size_t s = 0; s < a.size(); ++s) {
    EXPECT_EQ(b[s].step, static_cast<int64_t>(s));
    EXPECT_TRUE(at::equal(a[s].images, b[s].images));
    EXPECT_TRUE(at::equal(a[s].images, c[s].images));
    EXPECT_TRUE(at::equal(a[s].labels, c[s].labels));
  }
}

TEST(Loader, ResumingMidEpochContinuesExactly) {
  Fixture f;
  Loader loader(f.path, LoaderOptions().batch_size(4).seed(8).random_crop_padding(1));
  const auto full = whole_epoch(loader, 3);
  const auto resumed = whole_epoch(loader, 3, 5);
  ASSERT_EQ(resumed.size(), full.size() - 5);
  for (size_t s = 0; s < resumed.size(); ++s) {
    EXPECT_EQ(resumed[s].step, full[s + 5].step);
    EXPECT_TRUE(at::equal(resumed[s].images, full[s + 5].images));
  }
}

TEST(Loader, EpochsDifferInOrder) {
  Fixture f;
  Loader loader(f.path, LoaderOptions().batch_size(36));
  const auto e0 = whole_epoch(loader, 0);
  const auto e1 = whole_epoch(loader, 1);
  EXPECT_FALSE(at::equal(e0[0].indices, e1[0].indices));
}

TEST(Loader, DestroyingMidEpochJoinsTheThreads) {
  Fixture f;
  {
    Loader loader(f.path, LoaderOptions().batch_size(2).threads(2).prefetch(3));
    loader.start_epoch(0);
    auto first = loader.next();
    ASSERT_TRUE(first.has_value());
    EXPECT_EQ(first->step, 0);
  }  // the destructor must join while workers wait on a full queue
  SUCCEED();
}

TEST(Loader, LimitKeepsTheFirstSamplesAcrossRanksShuffledOrNot) {
  Fixture f;
  for (const bool shuffle : {false, true}) {
    std::vector<int64_t> seen;
    for (int64_t rank = 0; rank < 2; ++rank) {
      // Streaming (in_memory_limit 0) and in memory must agree on the limited set.
      for (const int64_t memory : {int64_t{0}, int64_t{1} << 20}) {
        Loader loader(f.path, LoaderOptions()
                                  .batch_size(4)
                                  .rank(rank)
                                  .world_size(2)
                                  .shuffle(shuffle)
                                  .drop_last(false)
                                  .limit(11)
                                  .in_memory_limit_bytes(memory));
        EXPECT_EQ(loader.plan().num_samples, 11);
        EXPECT_EQ(loader.info().size, kN);
        for (const Batch& b : whole_epoch(loader, 1))
          for (int64_t i = 0; i < b.indices.size(0); ++i) {
            const int64_t index = b.indices[i].item<int64_t>();
            EXPECT_TRUE(at::equal(b.images[i], f.reference(index))) << index;
            if (memory == 0) seen.push_back(index);
          }
      }
    }
    std::sort(seen.begin(), seen.end());
    std::vector<int64_t> first(11);
    std::iota(first.begin(), first.end(), int64_t{0});
    EXPECT_EQ(seen, first) << "shuffle " << shuffle;
  }
  EXPECT_EQ(Loader(f.path, LoaderOptions().batch_size(4).limit(kN + 5)).plan().num_samples, kN);
  EXPECT_THROW(Loader(f.path, LoaderOptions().limit(-2)), DataError);
  // A limit below one global batch with drop_last says so.
  EXPECT_THROW(Loader(f.path, LoaderOptions().batch_size(8).limit(5)), DataError);
}

TEST(Loader, RejectsBadOptionsNamingTheFileOrFlag) {
  Fixture f;
  EXPECT_THROW(Loader(f.path, LoaderOptions().batch_size(9).world_size(2)), DataError);
  EXPECT_THROW(Loader(f.path, LoaderOptions().batch_size(64)), DataError);  // > N, drop_last
  EXPECT_THROW(Loader(f.path, LoaderOptions().pad_to(4, 4)), DataError);
  Loader loader(f.path, LoaderOptions().batch_size(4));
  EXPECT_THROW(loader.next(), DataError);  // before start_epoch
  try {
    Loader(f.dir.file("absent.h5"), LoaderOptions());
    FAIL() << "expected DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("absent.h5"), std::string::npos);
  }
}

}  // namespace
}  // namespace lmt::data
