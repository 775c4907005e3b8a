// Model files as a reader meets them: damaged archives (a flipped byte, a truncation), weights
// that do not match their digest, non-finite weights, and a full disk while writing. Each is
// refused with one ModelError line naming the file.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <lmt/io/atomic_file.h>
#include <lmt/io/zip_check.h>
#include <lmt/models/model.h>

namespace fs = std::filesystem;
namespace lm = lmt::models;

namespace {

struct ModelFile : ::testing::Test {
  std::string dir = (fs::temp_directory_path() /
                     ("lmt-model-file-" + std::to_string(::getpid()) + "-" +
                      ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                        .string();
  std::string path = dir + "/model.pt";
  std::shared_ptr<lm::Model> model;

  void SetUp() override {
    fs::remove_all(dir);
    fs::create_directories(dir);
    lm::ModelConfig c;
    c.name = "lmt-mnist";
    model = lm::make_model(c);
  }
  void TearDown() override { fs::remove_all(dir); }

  // The ModelError message of loading `file`, "" when it loads.
  std::string error_of(const std::string& file, lm::ModelFileChecks checks = {}) {
    try {
      lm::load_model_file(file, checks);
    } catch (const lm::ModelError& e) {
      return e.what();
    }
    return "";
  }
  void flip_byte(const std::string& file, size_t offset) {
    std::string bytes = lmt::io::read_file(file);
    ASSERT_LT(offset, bytes.size());
    bytes[offset] = char(bytes[offset] ^ 0x01);
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
  }
  void set_first_element(const std::string& tensor, double value) {
    at::NoGradGuard no_grad;
    auto params = model->named_parameters();
    ASSERT_NE(params.find(tensor), nullptr) << tensor;
    params[tensor].view(-1)[0].fill_(value);
  }
};

void expect_one_line_naming(const std::string& error, const std::string& file,
                            const std::string& what) {
  EXPECT_EQ(error.rfind(file + ": ", 0), 0u) << error;
  EXPECT_NE(error.find(what), std::string::npos) << error;
  EXPECT_EQ(error.find('\n'), std::string::npos) << error;
}

TEST_F(ModelFile, AFreshFileLoadsWithItsDigestChecked) {
  lm::save_model_file(path, *model, {{"note", "x"}});
  EXPECT_EQ(error_of(path), "");
  auto loaded = lm::load_model_file(path);
  EXPECT_EQ(lm::weights_digest(*loaded.model), lm::weights_digest(*model));
  EXPECT_EQ(loaded.metadata.at("note"), "x");
  EXPECT_FALSE(fs::exists(path + ".tmp." + std::to_string(::getpid())));
}

// The weights are ~97% of the file (lmt-mnist: 665 KB of float32 tensors), so the middle byte
// lies inside a tensor's data; the zip entry's CRC-32 no longer matches.
TEST_F(ModelFile, AFlippedWeightByteIsRefused) {
  lm::save_model_file(path, *model);
  flip_byte(path, fs::file_size(path) / 2);
  expect_one_line_naming(error_of(path), path, "fails its CRC-32 check");
}

TEST_F(ModelFile, ATruncatedFileIsRefused) {
  lm::save_model_file(path, *model);
  for (uintmax_t size : {fs::file_size(path) / 2, fs::file_size(path) - 1, uintmax_t(10)}) {
    fs::resize_file(path, size);
    expect_one_line_naming(error_of(path), path, "damaged archive");
  }
}

// A zip whose CRCs are right but whose weights are not what was saved (rewritten by another
// tool, or weights swapped in): the stored digest catches it.
TEST_F(ModelFile, WeightsThatDifferFromTheStoredDigestAreRefused) {
  torch::serialize::OutputArchive archive;
  archive.write("lmt_model_format", c10::IValue(int64_t(1)));
  archive.write("lmt_model_config", c10::IValue(model->config().serialize()));
  archive.write("lmt_model_metadata", c10::IValue(std::string()));
  archive.write("lmt_weights_fnv1a64", c10::IValue(lm::weights_digest(*model)));
  set_first_element("fc1.weight", 0.5);
  model->save(archive);
  archive.save_to(path);
  expect_one_line_naming(error_of(path), path, "weights digest");
  EXPECT_EQ(error_of(path, {/*verify=*/false, /*finite=*/true}), "");
}

TEST_F(ModelFile, ANaNWeightIsRefusedNamingTheTensor) {
  set_first_element("conv1.weight", std::nan(""));
  lm::save_model_file(path, *model);
  expect_one_line_naming(error_of(path), path, "parameter 'conv1.weight' holds NaN");
  EXPECT_EQ(error_of(path, {/*verify=*/true, /*finite=*/false}), "");
}

TEST_F(ModelFile, AnInfiniteBiasIsRefusedNamingTheTensor) {
  set_first_element("fc2.bias", INFINITY);
  lm::save_model_file(path, *model);
  expect_one_line_naming(error_of(path), path, "parameter 'fc2.bias' holds +inf");
}

// RLIMIT_FSIZE with SIGXFSZ ignored makes write() fail with EFBIG, as a full disk fails with
// ENOSPC: one error naming the file, the previous file intact, no temporary left.
TEST_F(ModelFile, AFullDiskKeepsThePreviousFile) {
  lm::save_model_file(path, *model, {{"generation", "1"}});
  struct rlimit saved {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &saved), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 64 * 1024;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  std::string error;
  try {
    lm::save_model_file(path, *model, {{"generation", "2"}});
  } catch (const lm::ModelError& e) {
    error = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  expect_one_line_naming(error, path, "cannot write: File too large");
  EXPECT_EQ(lm::load_model_file(path).metadata.at("generation"), "1");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
}

// Every single-byte change (one low bit, one high bit, all bits) of a small archive (two tensors
// and a string, 1.9 KB): verify_zip_archive refuses
// it, or the byte lies where neither the check nor LibTorch looks (timestamps, versions,
// padding) and the tensors read back unchanged. A crash in LibTorch's parser ends the test.
TEST(ZipCheck, EverySingleByteChangeIsRefusedOrChangesNothing) {
  torch::serialize::OutputArchive archive;
  const at::Tensor a = at::arange(12, at::kFloat).reshape({3, 4}), b = at::ones({5}, at::kDouble);
  archive.write("a", a, /*is_buffer=*/true);
  archive.write("b", b, /*is_buffer=*/true);
  archive.write("note", c10::IValue(std::string("small")));
  std::string bytes;
  archive.save_to([&](const void* data, size_t size) -> size_t {
    bytes.append(static_cast<const char*>(data), size);
    return size;
  });
  lmt::io::verify_zip_archive(bytes.data(), bytes.size(), "small.pt");
  int refused = 0, unchanged = 0, changed = 0;
  for (size_t at = 0; at < 3 * bytes.size(); ++at) {
    std::string mutated = bytes;
    const int mask = at < bytes.size() ? 0x01 : at < 2 * bytes.size() ? 0x80 : 0xff;
    mutated[at % bytes.size()] = char(mutated[at % bytes.size()] ^ mask);
    try {
      lmt::io::verify_zip_archive(mutated.data(), mutated.size(), "small.pt");
    } catch (const lmt::io::IoError& e) {
      ++refused;
      EXPECT_EQ(std::string(e.what()).rfind("small.pt: damaged archive (", 0), 0u) << e.what();
      continue;
    }
    try {
      torch::serialize::InputArchive in;
      in.load_from(mutated.data(), mutated.size());
      at::Tensor ra, rb;
      c10::IValue note;
      in.read("a", ra, /*is_buffer=*/true);
      in.read("b", rb, /*is_buffer=*/true);
      in.read("note", note);
      if (ra.equal(a) && rb.equal(b) && note.toStringRef() == "small")
        ++unchanged;
      else {
        ++changed;
        ADD_FAILURE() << "byte " << at % bytes.size() << " ^ " << mask << " changed the contents";
      }
    } catch (const std::exception& e) {
      ++changed;  // LibTorch refused what the check let through: counted as a miss
      ADD_FAILURE() << "byte " << at % bytes.size() << " ^ " << mask << ": "
                    << std::string(e.what()).substr(0, 120);
    }
  }
  EXPECT_EQ(changed, 0) << refused << " refused, " << unchanged << " unchanged";
  EXPECT_GT(refused, int(bytes.size())) << unchanged << " unchanged of " << 3 * bytes.size();
}

}  // namespace
