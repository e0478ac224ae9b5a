// greedy MODEL PROMPT [N]: loads a model folder (or a Hugging Face cache name), encodes PROMPT,
// generates N tokens greedily (default 20, no stop at EOS) and prints the new token ids on one
// line, then the text they decode to.
#include <cstdio>
#include <exception>
#include <string>

#include <neurontrace/runtime/generator.h>
#include <neurontrace/runtime/session.h>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: greedy MODEL PROMPT [N]\n");
    return 2;
  }
  try {
    nt::Session session = nt::open_session(argv[1]);
    nt::GenerationConfig config;
    config.max_new_tokens = argc > 3 ? std::stoi(argv[3]) : 20;
    config.stop_at_eos = false;  // temperature 0 (the default): greedy
    nt::Generator generator(*session.model, nullptr);
    const auto results = generator.generate({session.encode_prompt(argv[2], 0)}, config);
    std::string ids;
    for (int id : results[0].generated_ids) ids += (ids.empty() ? "" : " ") + std::to_string(id);
    std::printf("%s\n%s\n", ids.c_str(), session.tokenizer->decode(results[0].generated_ids).c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "greedy: %s\n", e.what());
    return 1;
  }
}
