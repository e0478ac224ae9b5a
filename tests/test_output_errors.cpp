// Writing outputs can fail: an output folder under a regular file, a full disk. Each ends in the
// CLI's one-line error naming the file (exit 1, never an escaped exception), keeps the files and
// checkpoints written before, leaves no temporary file, and a rerun with space resumes.
//
// The full-disk cases run on a small tmpfs, which needs root and a kernel that lets the test
// mount; elsewhere they are skipped with a message.
#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "test_support.h"
#include "util/atomic_file.h"
#include "util/error.h"

using nlohmann::json;
using nt::test::read_text;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");

// The error is one line at the end of stderr (a resumed study prints its "resuming" notice first).
void expect_one_line_error(const nt::test::CliResult& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const size_t at = r.err.find("neurontrace: error: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  EXPECT_TRUE(at == 0 || r.err[at - 1] == '\n') << r.err;
  const std::string line = r.err.substr(at);
  EXPECT_NE(line.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(line.find('\n'), line.size() - 1) << "not one line: " << r.err;
}

// The seed study, 8 new tokens, no steering: five prompt groups, ~200 KB of checkpoints, ~700 KB
// of outputs in all on gpt2-tiny.
std::string write_study(const TempDir& dir) {
  json cfg = json::parse(read_text(shared_path("experiments/seed-study.json")));
  cfg.erase("steer");
  cfg["generation"] = {{"max_new_tokens", 8}};
  const std::string path = dir.file("study.json");
  write_text(path, cfg.dump(1));
  return path;
}

std::vector<std::string> study_args(const std::string& config, const std::string& out) {
  return {"--threads", "1", "study", config, "-m", kTiny, "--out", out, "-q"};
}

std::vector<std::string> files_under(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::recursive_directory_iterator(dir, ec))
    if (e.is_regular_file()) out.push_back(e.path().string());
  return out;
}

bool is_temp_name(const std::string& path) {
  static const std::regex temp(R"(.*\.tmp\.[0-9]+$)");
  return std::regex_match(path, temp);
}

// A tmpfs of `kib` KiB mounted on a fresh folder, unmounted by the destructor.
class SmallDisk {
 public:
  explicit SmallDisk(int kib, int inodes = 0) {
    if (::geteuid() != 0) {
      why_not_ = "needs root to mount a small tmpfs";
      return;
    }
    std::string opts = "size=" + std::to_string(kib) + "k,mode=0755";
    if (inodes > 0) opts += ",nr_inodes=" + std::to_string(inodes);
    if (::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, opts.c_str()) != 0) {
      why_not_ = std::string("cannot mount a tmpfs here (") + std::strerror(errno) + ")";
      return;
    }
    mounted_ = true;
  }
  ~SmallDisk() {
    if (mounted_) ::umount2(dir_.path().c_str(), MNT_DETACH);
  }
  // Gives the disk more room, keeping its files.
  void grow(int kib) {
    const std::string opts = "size=" + std::to_string(kib) + "k";
    ASSERT_EQ(::mount("tmpfs", dir_.path().c_str(), "tmpfs", MS_REMOUNT, opts.c_str()), 0) << std::strerror(errno);
  }
  bool mounted() const { return mounted_; }
  const std::string& why_not() const { return why_not_; }
  std::string file(const std::string& name) const { return dir_.file(name); }

 private:
  TempDir dir_;
  bool mounted_ = false;
  std::string why_not_;
};

#define SMALL_DISK(var, ...)                          \
  SmallDisk var(__VA_ARGS__);                         \
  if (!var.mounted()) GTEST_SKIP() << var.why_not()

// Uses up the disk's free inodes with empty files; returns their paths.
std::vector<std::string> use_up_inodes(const SmallDisk& disk) {
  std::vector<std::string> made;
  for (int i = 0; i < 100000; ++i) {
    const std::string path = disk.file("filler" + std::to_string(i));
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) break;
    ::close(fd);
    made.push_back(path);
  }
  return made;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Output folder under a regular file

TEST(OutputErrors, StudyOutUnderARegularFileIsOneLineError) {
  TempDir dir;
  const std::string config = write_study(dir);
  write_text(dir.file("existing-file"), "x");
  auto r = run_cli(study_args(config, dir.file("existing-file/x")));
  expect_one_line_error(r, dir.file("existing-file/x"));
  EXPECT_NE(r.err.find("cannot create folder"), std::string::npos) << r.err;
}

TEST(OutputErrors, TraceAndSteerOutUnderARegularFileAreOneLineErrors) {
  TempDir dir;
  write_text(dir.file("existing-file"), "x");
  write_text(dir.file("prompts.json"), R"({"prompts": ["Tulips are"]})");
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("prompts.json"), "-n", "2", "--normalize", "none", "--out",
                    dir.file("existing-file/out")});
  expect_one_line_error(r, dir.file("existing-file/out"));
  r = run_cli({"steer", "-m", kTiny, "-p", "Hello", "-n", "2", "--ablate", "0:1", "--controls", "0", "--out",
               dir.file("existing-file/sub/steer.json")});
  expect_one_line_error(r, dir.file("existing-file/sub"));
  r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("prompts.json"), "-n", "2", "--normalize", "none",
               "--dump-activations", dir.file("existing-file/acts.safetensors")});
  expect_one_line_error(r, dir.file("existing-file"));
  // A missing folder for the dump is created, as --out's is.
  r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("prompts.json"), "-n", "2", "--normalize", "none",
               "--dump-activations", dir.file("new/acts.safetensors")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NO_THROW(nt::SafetensorsFile{dir.file("new/acts.safetensors")});
}

TEST(OutputErrors, MakeDirectoriesNamesTheFolder) {
  TempDir dir;
  write_text(dir.file("f"), "x");
  try {
    nt::make_directories(dir.file("f/a/b"));
    FAIL() << "no error";
  } catch (const nt::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("f/a/b") + ": cannot create folder (", 0), 0u) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Full disk

TEST(OutputErrors, AtomicWriteOnFullDiskKeepsTheEarlierFile) {
  SMALL_DISK(disk, 64);
  const std::string path = disk.file("out.txt");
  nt::write_file_atomic(path, "first version\n");
  try {
    nt::write_file_atomic(path, std::string(256 * 1024, 'x'));
    FAIL() << "a 256 KiB write fit on a 64 KiB disk";
  } catch (const nt::Error& e) {
    EXPECT_EQ(std::string(e.what()), path + ": cannot write (" + std::strerror(ENOSPC) + ")");
  }
  EXPECT_EQ(read_text(path), "first version\n");
  for (const auto& f : files_under(disk.file(""))) EXPECT_FALSE(is_temp_name(f)) << "left behind: " << f;
  // The space the failed write took is free again.
  nt::write_file_atomic(disk.file("other.txt"), std::string(32 * 1024, 'y'));
}

// The disk fills while group checkpoints are written: the run stops at the checkpoint that did not
// fit; the ones before are whole; with more room, the rerun restores them and finishes.
TEST(OutputErrors, StudyFullDiskDuringCheckpointsResumes) {
  SMALL_DISK(disk, 100);  // the baseline's and one concept's checkpoint fit, not a third
  TempDir dir;
  const std::string config = write_study(dir);
  const std::string out = disk.file("study");
  auto r = run_cli(study_args(config, out));
  expect_one_line_error(r, out + "/groups/");
  EXPECT_NE(r.err.find(".safetensors: cannot write (" + std::string(std::strerror(ENOSPC)) + ")"), std::string::npos)
      << r.err;
  int checkpoints = 0;
  for (const auto& f : files_under(out)) {
    EXPECT_FALSE(is_temp_name(f)) << "left behind: " << f;
    if (f.ends_with(".safetensors")) {
      EXPECT_NO_THROW(nt::SafetensorsFile{f}) << f;
      ++checkpoints;
    }
  }
  EXPECT_GE(checkpoints, 1);
  EXPECT_LT(checkpoints, 5);

  disk.grow(4096);
  r = run_cli(study_args(config, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming " + out + ": " + std::to_string(checkpoints) + " of 5 prompt groups already done"),
            std::string::npos)
      << r.err;
  EXPECT_TRUE(fs::exists(out + "/report.html"));
}

// The disk fills after every checkpoint, while the tables, heatmaps and pages are written: every
// file written before stays whole, and the rerun restores all five groups and matches a run that
// never failed.
TEST(OutputErrors, StudyFullDiskDuringOutputsResumes) {
  SMALL_DISK(disk, 300);  // the checkpoints (~200 KB) fit, the outputs (~500 KB) do not
  TempDir dir;
  const std::string config = write_study(dir);
  const std::string out = disk.file("study");
  auto r = run_cli(study_args(config, out));
  expect_one_line_error(r, out + "/");
  EXPECT_NE(r.err.find(": cannot write (" + std::string(std::strerror(ENOSPC)) + ")"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("/groups/"), std::string::npos) << "the checkpoints should have fit: " << r.err;
  for (const auto& f : files_under(out)) EXPECT_FALSE(is_temp_name(f)) << "left behind: " << f;
  EXPECT_FALSE(fs::exists(out + "/report.html"));

  disk.grow(4096);
  r = run_cli(study_args(config, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming " + out + ": 5 of 5 prompt groups already done"), std::string::npos) << r.err;

  const std::string clean = dir.file("clean");
  ASSERT_EQ(run_cli(study_args(config, clean)).exit_code, 0);
  for (const char* f : {"consistency.csv", "overlap_generated_hook_resid_post.csv", "study.json"})
    EXPECT_EQ(read_text(out + "/" + f), read_text(clean + "/" + f)) << f;
}

TEST(OutputErrors, TraceFullDiskNamesTheFile) {
  SMALL_DISK(disk, 8);
  TempDir dir;
  write_text(dir.file("prompts.json"), R"({"prompts": ["Tulips are", "The tulip fields"]})");
  write_text(disk.file("filler"), std::string(4096, 'f'));
  auto r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("prompts.json"), "-n", "4", "--normalize", "none", "--out",
                    disk.file("trace"), "--dump-activations", disk.file("acts.safetensors")});
  expect_one_line_error(r, disk.file("trace/trace.json") + ": cannot write (" + std::strerror(ENOSPC) + ")");
  for (const auto& f : files_under(disk.file(""))) EXPECT_FALSE(is_temp_name(f)) << "left behind: " << f;

  fs::remove(disk.file("filler"));
  disk.grow(4096);
  r = run_cli({"trace", "-m", kTiny, "--prompts", dir.file("prompts.json"), "-n", "4", "--normalize", "none", "--out",
               disk.file("trace"), "--dump-activations", disk.file("acts.safetensors")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NO_THROW(nt::SafetensorsFile{disk.file("acts.safetensors")});
}

// The disk runs out of inodes just when the study creates its neurons/ folder: a file-system
// error there (which used to escape main as std::filesystem::filesystem_error, exit 134) is the
// one-line error naming the folder.
TEST(OutputErrors, StudyOutOfInodesAtAFolderNamesTheFolder) {
  SMALL_DISK(disk, 4096, 64);
  TempDir dir;
  const std::string config = write_study(dir);
  const std::string out = disk.file("study");
  ASSERT_EQ(run_cli(study_args(config, out)).exit_code, 0);
  // Keep the checkpoints; the rerun writes the overlap files anew, then creates neurons/.
  int overlap_files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name == "groups") continue;
    if (name.starts_with("overlap_")) ++overlap_files;
    fs::remove_all(e.path());
  }
  ASSERT_GT(overlap_files, 0);
  std::vector<std::string> filler = use_up_inodes(disk);
  ASSERT_GE(filler.size(), static_cast<size_t>(overlap_files));
  for (int i = 0; i < overlap_files; ++i) {
    fs::remove(filler.back());
    filler.pop_back();
  }
  auto r = run_cli(study_args(config, out));
  expect_one_line_error(r, out + "/neurons: cannot create folder (" + std::strerror(ENOSPC) + ")");

  for (const auto& f : filler) fs::remove(f);
  r = run_cli(study_args(config, out));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming " + out + ": 5 of 5 prompt groups already done"), std::string::npos) << r.err;
}
