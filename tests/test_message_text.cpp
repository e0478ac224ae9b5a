// Error messages never carry raw bytes from input files to the terminal: the escaping helper
// (src/util/message_text.h) on its own, then files crafted with ESC, 0xFF and C1 bytes in the
// places the readers quote (safetensors header, config.json, tokenizer files, study configs,
// prompt files, trace.json), through the library and through the CLI.
#include "util/message_text.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "io/model_config.h"
#include "io/prompts_file.h"
#include "io/safetensors.h"
#include "study/study_config.h"
#include "test_support.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

using nt::escape_for_message;
using nt::quote_for_message;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
namespace fs = std::filesystem;

namespace {

// What a terminal receives safely: no C0 control byte, no DEL, no byte that cannot occur in UTF-8
// (0xC0, 0xC1, 0xF5..0xFF), no C1 control character (U+0080..U+009F, encoded C2 80..C2 9F), and
// every multi-byte sequence complete. Checked byte by byte, independently of the helper.
::testing::AssertionResult terminal_safe(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 || b == 0x7f || b == 0xc0 || b == 0xc1 || b >= 0xf5)
      return ::testing::AssertionFailure() << "raw byte 0x" << std::hex << int(b) << " at " << std::dec << i << " in: " << s;
    if (b == 0xc2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) <= 0x9f)
      return ::testing::AssertionFailure() << "C1 control at " << i << " in: " << s;
    if (b >= 0x80) {
      const size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
      if (n == 0 || i + n > s.size())
        return ::testing::AssertionFailure() << "invalid UTF-8 at " << i << " in: " << s;
      for (size_t k = 1; k < n; ++k)
        if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80)
          return ::testing::AssertionFailure() << "invalid UTF-8 at " << i << " in: " << s;
      i += n - 1;
    }
  }
  return ::testing::AssertionSuccess();
}

// The message of the nt::Error that `f` throws (a failure when it throws nothing).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const nt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no nt::Error thrown";
  return "";
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

const std::string kEsc = "\x1b[2J\x1b]0;pwned\x07";  // clear screen, set window title

}  // namespace

// ---------------------------------------------------------------------------------------------
// The helper

TEST(MessageText, EscapesControlCharacters) {
  EXPECT_EQ(escape_for_message("a\nb\rc\td"), "a\\nb\\rc\\td");
  EXPECT_EQ(escape_for_message("\x1b[31mred"), "\\x1b[31mred");
  EXPECT_EQ(escape_for_message(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(escape_for_message("del\x7f"), "del\\x7f");
  EXPECT_EQ(escape_for_message("csi\xc2\x9b"), "csi\\u009b");            // U+009B, a one-character CSI
  EXPECT_EQ(escape_for_message("bidi\xe2\x80\xae!"), "bidi\\u202e!");     // RIGHT-TO-LEFT OVERRIDE
}

TEST(MessageText, EscapesInvalidUtf8) {
  EXPECT_EQ(escape_for_message("\xff"), "\\xff");
  EXPECT_EQ(escape_for_message("a\x80z"), "a\\x80z");                    // stray continuation byte
  EXPECT_EQ(escape_for_message("\xc0\xaf"), "\\xc0\\xaf");              // overlong '/'
  EXPECT_EQ(escape_for_message("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");     // overlong, 3 bytes
  EXPECT_EQ(escape_for_message("\xed\xa0\x80"), "\\xed\\xa0\\x80");     // surrogate U+D800
  EXPECT_EQ(escape_for_message("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // beyond U+10FFFF
  EXPECT_EQ(escape_for_message("cut \xe2\x82"), "cut \\xe2\\x82");      // sequence cut short
}

TEST(MessageText, KeepsValidMultiByteText) {
  const std::string text = "caf\xc3\xa9 \xe2\x82\xac \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x8c\xb7 \xe2\x96\x81x";  // café € 中文 🌷 ▁x
  EXPECT_EQ(escape_for_message(text), text);
  EXPECT_EQ(quote_for_message(text), "'" + text + "'");
  EXPECT_EQ(escape_for_message("C:\\path 'quoted'"), "C:\\path 'quoted'");  // backslashes stay
}

TEST(MessageText, CapsTheLengthAtACharacterBoundary) {
  const std::string ellipsis = "\xe2\x80\xa6";
  EXPECT_EQ(escape_for_message(std::string(1000, 'a'), 10), std::string(10, 'a') + ellipsis);
  EXPECT_EQ(escape_for_message(std::string(10, 'a'), 10), std::string(10, 'a'));
  // An escape or a multi-byte character is never cut in half.
  EXPECT_EQ(escape_for_message("abcdefgh\xff", 10), "abcdefgh" + ellipsis);
  EXPECT_EQ(escape_for_message("abcdefghi\xc3\xa9", 10), "abcdefghi" + ellipsis);
  EXPECT_EQ(quote_for_message(std::string(500, 'x')).size(), 2 + 80 + ellipsis.size());
  EXPECT_EQ(escape_for_message(std::string(5000, 'x')).size(), 400 + ellipsis.size());
}

TEST(MessageText, EscapingTwiceChangesNothing) {
  const std::string once = escape_for_message("a\x1b" "b\xff\xc2\x9b\n\\x");
  EXPECT_EQ(escape_for_message(once), once);
  EXPECT_TRUE(terminal_safe(once));
}

// ---------------------------------------------------------------------------------------------
// Files crafted to inject bytes

TEST(MessageText, SafetensorsHeaderWithInvalidUtf8AndEscape) {
  TempDir dir;
  const std::string path = dir.file("bad.safetensors");
  // 0xFF inside a key: nlohmann's parse error quotes the bytes it read ("last read: ...").
  for (const std::string& header : {std::string("{\"red\xff\x1b[31m\": 1}"), "{\"" + kEsc + "x\": 1}"}) {
    write_text(path, u64_le(header.size()) + header);
    const std::string msg = error_of([&] { nt::SafetensorsFile f(path); });
    EXPECT_NE(msg.find("malformed header JSON"), std::string::npos) << msg;
    EXPECT_TRUE(terminal_safe(msg));
  }
  // Valid JSON whose tensor name and dtype carry ESC and U+009B (escaped in JSON, raw once parsed).
  const std::string header = R"({"t\u001b[2J": {"dtype": "F\u001b]0;x\u0007\u009b", "shape": [1], "data_offsets": [0, 4]}})";
  write_text(path, u64_le(header.size()) + header + std::string(4, '\0'));
  const std::string msg = error_of([&] { nt::SafetensorsFile f(path); });
  EXPECT_NE(msg.find("unsupported dtype 'F\\x1b]0;x\\x07\\u009b'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("tensor 't\\x1b[2J'"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
}

TEST(MessageText, ConfigJsonModelTypeWithEscape) {
  TempDir dir;
  write_text(dir.file("config.json"), R"({"model_type": "\u001b[2Jevil\u009b"})");
  const std::string msg = error_of([&] { nt::load_model_config(dir.path()); });
  EXPECT_NE(msg.find("unknown model_type '\\x1b[2Jevil\\u009b'"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
  // Raw bytes (not valid JSON) in config.json: the parse error quotes them.
  write_text(dir.file("config.json"), "{\"model_type\": \"gpt2\xff" + kEsc + "\"}");
  const std::string parse_msg = error_of([&] { nt::load_model_config(dir.path()); });
  EXPECT_NE(parse_msg.find("malformed JSON"), std::string::npos) << parse_msg;
  EXPECT_TRUE(terminal_safe(parse_msg));
}

TEST(MessageText, TokenizerFilesWithEscape) {
  TempDir dir;
  // tokenizer.json with raw bytes (a parse error), then one with an escaped ESC in its model type.
  write_text(dir.file("tokenizer.json"), "{\"model\": {\"type\": \"" + kEsc + "\xff\"}}");
  std::string msg = error_of([&] { nt::load_tokenizer(dir.path()); });
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
  write_text(dir.file("tokenizer.json"), R"({"model": {"type": "BPE\u001b[2J"}})");
  msg = error_of([&] { nt::load_tokenizer(dir.path()); });
  EXPECT_NE(msg.find("'BPE\\x1b[2J'"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
  // A real tokenizer.json, and a tokenizer_config.json naming a token that carries ESC.
  fs::copy_file(shared_path("fixtures/models/pythia-tiny/tokenizer.json"), dir.file("tokenizer.json"),
                fs::copy_options::overwrite_existing);
  write_text(dir.file("tokenizer_config.json"), R"({"eos_token": "<eos\u001b]0;x\u0007>"})");
  msg = error_of([&] { nt::load_tokenizer(dir.path()); });
  EXPECT_NE(msg.find("eos_token '<eos\\x1b]0;x\\x07>' is not a token"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
}

TEST(MessageText, StudyConfigAndPromptFilesWithEscape) {
  TempDir dir;
  write_text(dir.file("study.json"), R"({"baseline": ["a"], "concepts": {"x": ["b"]}, "typo\u001b[2J": 1})");
  std::string msg = error_of([&] { nt::load_study_config(dir.file("study.json")); });
  EXPECT_NE(msg.find("unknown field 'typo\\x1b[2J'"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
  write_text(dir.file("study.json"), "{\"baseline\": [\"a\xff" + kEsc + "\"]}");
  msg = error_of([&] { nt::load_study_config(dir.file("study.json")); });
  EXPECT_TRUE(terminal_safe(msg));
  // A concept name reaches tables, warnings and the terminal: one with ESC is refused at load.
  write_text(dir.file("study.json"), R"({"baseline": ["a"], "concepts": {"x\u001b[2J": ["b"]}})");
  msg = error_of([&] { nt::load_study_config(dir.file("study.json")); });
  EXPECT_NE(msg.find("concept name 'x\\x1b[2J' has control characters"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
  write_text(dir.file("prompts.json"), "[\"" + kEsc + "\xfe\"]");
  msg = error_of([&] { nt::load_prompts(dir.file("prompts.json")); });
  EXPECT_NE(msg.find("malformed JSON"), std::string::npos) << msg;
  EXPECT_TRUE(terminal_safe(msg));
}

// End to end: the CLI's stderr for a model whose config.json or weights carry injected bytes, a
// steering spec and a trace.json for --from-trace.
TEST(MessageText, CliErrorsCarryNoRawBytes) {
  TempDir dir;
  const std::string tiny = shared_path("fixtures/models/gpt2-tiny");
  const std::string model = dir.file("model");
  fs::create_directories(model);
  for (const char* f : {"vocab.json", "merges.txt", "model.safetensors"}) fs::copy_file(tiny + "/" + f, model + "/" + f);
  write_text(model + "/config.json", R"({"model_type": "\u001b[2Jgpt2\u009b"})");
  auto r = run_cli({"generate", "-m", model, "-p", "Hello", "-n", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("unknown model_type '\\x1b[2Jgpt2\\u009b'"), std::string::npos) << r.err;
  EXPECT_TRUE(terminal_safe(r.err.substr(0, r.err.size() - 1)));

  fs::copy_file(tiny + "/config.json", model + "/config.json", fs::copy_options::overwrite_existing);
  const std::string header = "{\"w\xff" + kEsc + "\": 1}";
  write_text(model + "/model.safetensors", u64_le(header.size()) + header);
  r = run_cli({"generate", "-m", model, "-p", "Hello", "-n", "2"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("model.safetensors: malformed header JSON"), std::string::npos) << r.err;
  EXPECT_TRUE(terminal_safe(r.err.substr(0, r.err.size() - 1)));

  r = run_cli({"steer", "-m", tiny, "-p", "Hello", "-n", "2", "--ablate", "1:5\x1b[2J\xff"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(terminal_safe(r.err.substr(0, r.err.size() - 1)));

  write_text(dir.file("trace.json"), "{\"kind\": \"trace\xff" + kEsc + "\"}");
  r = run_cli({"steer", "-m", tiny, "-p", "Hello", "-n", "2", "--from-trace", dir.file("trace.json"), "--top", "3"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("trace.json: malformed JSON"), std::string::npos) << r.err;
  EXPECT_TRUE(terminal_safe(r.err.substr(0, r.err.size() - 1)));
}
