#include "io/hub_download.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "io/hf_environment.h"
#include "io/model_resolver.h"
#include "io/model_weights.h"
#include "io/sha256.h"
#include "util/atomic_file.h"
#include "util/error.h"

#ifndef NT_VERSION
#define NT_VERSION "dev"
#endif

namespace nt {

namespace fs = std::filesystem;

namespace {

constexpr int kMaxAttempts = 3;
constexpr long kConnectTimeoutS = 30;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Keeps messages on one line and short (server bodies can be anything).
std::string one_line(const std::string& s, size_t max = 200) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n' || c == '\r' || c == '\t') {
      out += ' ';
    } else if (u < 0x20 || u == 0x7f) {  // never pass terminal control bytes through
      static const char* hex = "0123456789abcdef";
      out += std::string("\\x") + hex[u >> 4] + hex[u & 15];
    } else {
      out += c;
    }
  }
  return trim(out);
}

long env_seconds(const char* name, long fallback) {
  const std::string v = trim(env(name));
  if (v.empty()) return fallback;
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(d > 0)) return fallback;
  return std::max(1L, static_cast<long>(d + 0.5));
}

std::string errno_text(int e) { return std::strerror(e); }

// Repository ids as the Hub accepts them: [ORG/]NAME of letters, digits, '_', '-', '.', no "--" or
// "..", not starting or ending with '-' or '.', at most 96 characters.
bool valid_repo_id(const std::string& id) {
  if (id.empty() || id.size() > 96) return false;
  if (id.find("--") != std::string::npos || id.find("..") != std::string::npos) return false;
  if (std::count(id.begin(), id.end(), '/') > 1) return false;
  size_t start = 0;
  while (true) {
    const size_t slash = id.find('/', start);
    const std::string part = id.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part.empty()) return false;
    for (char c : part)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
    if (part.front() == '-' || part.front() == '.' || part.back() == '-' || part.back() == '.') return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

bool is_alnum_token(const std::string& s) {
  return !s.empty() && s.size() <= 128 &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
}

bool is_sha256_hex(const std::string& s) {
  return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Percent-encodes a repository file name for a URL, keeping '/'.
std::string url_path(const std::string& f) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : f) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// "scheme://host:port" of a URL (lower-cased), to tell same-server redirects from CDN ones.
std::string origin(const std::string& url) {
  const size_t p = url.find("://");
  if (p == std::string::npos) return "";
  const size_t end = url.find_first_of("/?#", p + 3);
  return lower(url.substr(0, end));
}

struct Token {
  std::string value;
  std::string source;  // "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN" or the token file's path
};

// HF_TOKEN, else HUGGING_FACE_HUB_TOKEN, else the token file (io/hf_environment.h), as the Python
// library reads them.
Token read_token() {
  for (const char* name : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"}) {
    const std::string t = trim(env(name));
    if (!t.empty()) return {t, name};
  }
  const std::string path = hf_token_path();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {};
  try {
    const std::string t = trim(read_file(path));
    return t.empty() ? Token{} : Token{t, "the token file " + path};
  } catch (const Error&) {
    return {};
  }
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

using Headers = std::map<std::string, std::string>;

std::string header(const Headers& h, const std::string& name) {
  auto it = h.find(name);
  return it == h.end() ? "" : it->second;
}

// Collects the headers of the last response (a redirect's headers are dropped when the next starts).
size_t on_header(char* data, size_t size, size_t n, void* user) {
  auto* h = static_cast<Headers*>(user);
  std::string line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
  if (line.rfind("HTTP/", 0) == 0) {
    h->clear();
  } else if (const size_t c = line.find(':'); c != std::string::npos) {
    (*h)[lower(trim(line.substr(0, c)))] = trim(line.substr(c + 1));
  }
  return size * n;
}

struct Body {
  std::string text;
  size_t limit = 64u << 20;
};

size_t on_collect(char* data, size_t size, size_t n, void* user) {
  auto* b = static_cast<Body*>(user);
  if (b->text.size() + size * n > b->limit) return 0;
  b->text.append(data, size * n);
  return size * n;
}

struct CurlHandle {
  CURL* h = nullptr;
  curl_slist* headers = nullptr;
  char errbuf[CURL_ERROR_SIZE] = {0};
  CurlHandle() {
    curl_init_once();
    h = curl_easy_init();
    if (!h) throw Error("libcurl: cannot create a transfer handle");
  }
  ~CurlHandle() {
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
  }
  CurlHandle(const CurlHandle&) = delete;
  CurlHandle& operator=(const CurlHandle&) = delete;
  std::string error(CURLcode rc) const { return errbuf[0] ? std::string(errbuf) : curl_easy_strerror(rc); }
};

struct Response {
  CURLcode rc = CURLE_OK;
  std::string error;  // curl's message when rc != CURLE_OK
  long status = 0;
  Headers headers;
  std::string body;
  std::string redirect_url;  // where a redirect that was not followed points
};

struct Client {
  std::string endpoint;
  std::string repo;
  Token token;
  long stall_s = 30;
  bool progress = false;

  void setup(CurlHandle& c, const std::string& url, bool follow, Headers* headers) const {
    CURL* h = c.h;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, c.errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "neurontrace/" NT_VERSION);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, kConnectTimeoutS);
    // A transfer that moves no byte for stall_s seconds fails (and is retried/resumed).
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, stall_s);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, follow ? 1L : 0L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, 10L);
    // Never send the token to the CDN (another host) a redirect points to.
    curl_easy_setopt(h, CURLOPT_UNRESTRICTED_AUTH, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, headers);
    // Sizes and checksums are of the stored bytes: no transfer compression.
    c.headers = curl_slist_append(c.headers, "Accept-Encoding: identity");
    // The token goes to the Hub only (a paginated listing's next page included); libcurl keeps it
    // on redirects within that host and drops it on redirects elsewhere (the CDN).
    if (!token.value.empty() && origin(url) == origin(endpoint))
      c.headers = curl_slist_append(c.headers, ("Authorization: Bearer " + token.value).c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, c.headers);
  }

  // A request whose body (if any) is kept in memory: the API call and the metadata HEADs.
  Response request(const std::string& url, bool head, bool follow) const {
    CurlHandle c;
    Response r;
    Body body;
    setup(c, url, follow, &r.headers);
    if (head) curl_easy_setopt(c.h, CURLOPT_NOBODY, 1L);
    curl_easy_setopt(c.h, CURLOPT_WRITEFUNCTION, on_collect);
    curl_easy_setopt(c.h, CURLOPT_WRITEDATA, &body);
    r.rc = curl_easy_perform(c.h);
    if (r.rc != CURLE_OK) r.error = c.error(r.rc);
    curl_easy_getinfo(c.h, CURLINFO_RESPONSE_CODE, &r.status);
    char* redirect = nullptr;
    if (curl_easy_getinfo(c.h, CURLINFO_REDIRECT_URL, &redirect) == CURLE_OK && redirect) r.redirect_url = redirect;
    r.body = std::move(body.text);
    return r;
  }

  // The same, tried again (up to kMaxAttempts) on network errors, 429 and 5xx.
  Response request_retrying(const std::string& url, bool head, bool follow) const {
    for (int attempt = 1;; ++attempt) {
      Response r = request(url, head, follow);
      const bool transient = r.rc != CURLE_OK || r.status == 429 || r.status >= 500;
      if (!transient || attempt == kMaxAttempts) return r;
      std::this_thread::sleep_for(std::chrono::milliseconds(250 * attempt));
    }
  }

  // The server's own words: X-Error-Message, else the "error" of a JSON body.
  static std::string server_message(const Response& r) {
    std::string m = header(r.headers, "x-error-message");
    if (m.empty() && !r.body.empty()) {
      const nlohmann::json j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) m = j["error"].get<std::string>();
    }
    return m;
  }

  std::string token_hint() const {
    return token.value.empty() ? "set HF_TOKEN to an access token (or run `huggingface-cli login`)"
                               : "the token from " + token.source + " does not give access to it";
  }

  // What a 401 or 403 means, as the Python client reads them (utils/_http.py hf_raise_for_status):
  // an invalid token gets 401 "Invalid credentials in Authorization header" on every route; a gated
  // repository says GatedRepo; a 401 with RepoNotFound or no code at all is a repository that does
  // not exist or that this caller may not see.
  std::string access_error(const Response& r, const std::string& code, const std::string& msg) const {
    if (r.status == 401 && msg == "Invalid credentials in Authorization header")
      return "token rejected: the Hub does not accept the access token from " +
             (token.source.empty() ? std::string("this request") : token.source) +
             " (invalid, expired or revoked); create a new one at https://huggingface.co/settings/tokens, or unset "
             "it to download public models";
    if (code == "GatedRepo")
      return "'" + repo + "' is a gated model: accept its terms on its Hub page" +
             (token.value.empty() ? " and " + token_hint() : " with the account of the token; " + token_hint());
    if (code == "RepoNotFound" || (r.status == 401 && code.empty()))
      return "no such repository '" + repo + "' on the Hub, or it is private: " +
             (token.value.empty() ? token_hint() + " if it is yours" : token_hint());
    return "access to '" + repo + "' denied: " + token_hint();
  }

  [[noreturn]] void http_error(const Response& r, const std::string& url, const std::string& file) const {
    const std::string code = header(r.headers, "x-error-code");
    const std::string server_msg = server_message(r);
    std::string m;
    if (r.status == 401 || r.status == 403) {
      m = access_error(r, code, server_msg);
    } else if (r.status == 404) {
      if (code == "RepoNotFound" || (file.empty() && code != "RevisionNotFound"))
        m = "no such repository '" + repo + "' on the Hub";
      else if (code == "RevisionNotFound")
        m = "repository '" + repo + "' has no revision 'main'";
      else
        m = file + ": no such file in repository '" + repo + "'";
    } else {
      m = (file.empty() ? repo : repo + ": " + file) + ": the server refused the request";
    }
    if (!server_msg.empty()) m += " (" + one_line(server_msg) + ")";
    throw Error(m + " [HTTP " + std::to_string(r.status) + " from " + url + "]");
  }
};

// ---- progress bar (stderr, terminals only) and stall detection ----

struct Progress {
  bool enabled = false;  // draw the bar
  long stall_s = 30;     // abort when no byte came for this long
  bool stalled = false;
  curl_off_t last_now = 0;
  std::chrono::steady_clock::time_point last_byte;
  std::string name;
  long long total = -1;          // bytes of the whole file, -1 when unknown
  const uint64_t* file_bytes = nullptr;  // bytes in the partial file now
  uint64_t start_bytes = 0;      // bytes in the file when this transfer started
  std::chrono::steady_clock::time_point start, last;
  bool drawn = false;

  void begin(uint64_t have) {
    start_bytes = have;
    start = last = last_byte = std::chrono::steady_clock::now();
  }
  void draw(bool force) {
    if (!enabled) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last < std::chrono::milliseconds(100)) return;
    last = now;
    const double done = static_cast<double>(*file_bytes);
    const double secs = std::chrono::duration<double>(now - start).count();
    const double moved = done >= static_cast<double>(start_bytes) ? done - static_cast<double>(start_bytes) : done;
    const double rate = secs > 0 ? moved / secs / 1e6 : 0;
    std::string label = name.size() > 32 ? "..." + name.substr(name.size() - 29) : name;
    std::string bar;
    if (total > 0) {
      const int width = 24;
      const int fill = static_cast<int>(std::min(1.0, done / static_cast<double>(total)) * width);
      bar = "[" + std::string(static_cast<size_t>(fill), '#') + std::string(static_cast<size_t>(width - fill), '.') + "] ";
      std::fprintf(stderr, "\r%-32s %s%8.1f/%.1f MB %7.1f MB/s ", label.c_str(), bar.c_str(), done / 1e6,
                   static_cast<double>(total) / 1e6, rate);
    } else {
      std::fprintf(stderr, "\r%-32s %8.1f MB %7.1f MB/s ", label.c_str(), done / 1e6, rate);
    }
    std::fflush(stderr);
    drawn = true;
  }
  void end() {
    if (!enabled || !drawn) return;
    draw(true);
    std::fputc('\n', stderr);
    drawn = false;
  }
};

// libcurl calls this at least once a second, also while nothing arrives. CURLOPT_LOW_SPEED_TIME
// judges the average over the last few seconds; this aborts after stall_s seconds without a byte.
int on_xferinfo(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto* p = static_cast<Progress*>(user);
  const auto now = std::chrono::steady_clock::now();
  if (dlnow != p->last_now) {
    p->last_now = dlnow;
    p->last_byte = now;
  } else if (now - p->last_byte > std::chrono::seconds(p->stall_s)) {
    p->stalled = true;
    return 1;
  }
  p->draw(false);
  return 0;
}

// ---- writing a blob ----

struct Sink {
  CURL* h = nullptr;
  int fd = -1;
  const Headers* headers = nullptr;
  Sha256* hasher = nullptr;
  uint64_t* file_bytes = nullptr;  // bytes in the partial file == bytes hashed
  uint64_t offset = 0;             // bytes in the file when the request was made
  bool started = false;
  bool discard = false;      // an error response: its body is not file content
  bool wrong_range = false;  // a 206 that does not start where we asked
  std::string error_body;
  int write_errno = 0;
};

bool truncate_partial(int fd, Sha256& hasher, uint64_t& file_bytes) {
  hasher.reset();
  file_bytes = 0;
  return ::ftruncate(fd, 0) == 0;
}

size_t on_body(char* data, size_t size, size_t n, void* user) {
  Sink& s = *static_cast<Sink*>(user);
  const size_t len = size * n;
  if (!s.started) {
    s.started = true;
    long code = 0;
    curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &code);
    if (code == 206) {
      // "bytes START-END/TOTAL" must start where the partial file ends.
      const std::string cr = header(*s.headers, "content-range");
      const size_t sp = cr.find(' ');
      const unsigned long long start = std::strtoull(cr.c_str() + (sp == std::string::npos ? 0 : sp + 1), nullptr, 10);
      if (start != s.offset) {
        s.wrong_range = true;
        return 0;
      }
    } else if (code == 200) {
      // The server ignored the Range: start over from zero.
      if (s.offset > 0 && !truncate_partial(s.fd, *s.hasher, *s.file_bytes)) {
        s.write_errno = errno;
        return 0;
      }
      s.offset = 0;
    } else {
      s.discard = true;
    }
  }
  if (s.discard) {
    if (s.error_body.size() < 4096) s.error_body.append(data, std::min(len, size_t{4096}));
    return len;
  }
  size_t done = 0;
  while (done < len) {
    const ssize_t w = ::write(s.fd, data + done, len - done);
    if (w < 0) {
      if (errno == EINTR) continue;
      s.write_errno = errno;
      return 0;
    }
    done += static_cast<size_t>(w);
  }
  s.hasher->update(data, len);
  *s.file_bytes += len;
  return len;
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

// Holds the Python library's lock for a blob (same path, flock), so two downloaders — neurontrace
// or huggingface_hub — never write the same .incomplete file at once.
class BlobLock {
 public:
  explicit BlobLock(const std::string& path) {
    std::error_code ec;
    fs::create_directories(fs::path(path).parent_path(), ec);
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) return;  // a read-only lock folder must not stop the download
    while (::flock(fd_, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  ~BlobLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the lock
  }
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

struct FileMeta {
  std::string etag;     // without quotes: the blob's name
  long long size = -1;  // bytes, -1 when the server did not say
};

// HEAD {endpoint}/{repo}/resolve/{sha}/{file}: ETag and size from the Hub's own response. Redirects to
// the same server (renamed repositories) are followed; a redirect elsewhere (the CDN) is not: its
// response already carries X-Linked-Etag and X-Linked-Size.
FileMeta head_file(const Client& c, const std::string& url, const std::string& file) {
  std::string u = url;
  for (int hop = 0;; ++hop) {
    const Response r = c.request_retrying(u, /*head=*/true, /*follow=*/false);
    if (r.rc != CURLE_OK) throw Error(u + ": " + r.error);
    if (r.status >= 300 && r.status < 400 && hop < 10 && !r.redirect_url.empty() &&
        origin(r.redirect_url) == origin(u)) {
      u = r.redirect_url;
      continue;
    }
    if (r.status >= 400) c.http_error(r, u, file);
    FileMeta m;
    std::string etag = header(r.headers, "x-linked-etag");
    if (etag.empty()) etag = header(r.headers, "etag");
    if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
    if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
    if (etag.empty())
      throw Error(u + ": the server sent no ETag for " + file + " (is HF_ENDPOINT a Hugging Face Hub?)");
    if (etag.size() > 128 || etag.front() == '.' ||
        !std::all_of(etag.begin(), etag.end(), [](char ch) {
          return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == '_' || ch == '.';
        }))
      throw Error(u + ": unusable ETag '" + one_line(etag, 80) + "' for " + file);
    m.etag = etag;
    std::string size = header(r.headers, "x-linked-size");
    if (size.empty() && r.status < 300) size = header(r.headers, "content-length");
    if (!size.empty()) {
      char* end = nullptr;
      const long long v = std::strtoll(size.c_str(), &end, 10);
      if (end != size.c_str() && *end == '\0' && v >= 0) m.size = v;
    }
    return m;
  }
}

// Downloads `url` into blob (via blob.incomplete, resumed when present), verifying LFS checksums.
void download_blob(const Client& c, const std::string& url, const std::string& file, const FileMeta& m,
                   const std::string& blob) {
  const std::string part = blob + ".incomplete";
  const bool lfs = is_sha256_hex(m.etag);
  Fd f;
  f.fd = ::open(part.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (f.fd < 0) throw Error(part + ": cannot write (" + errno_text(errno) + ")");
  Sha256 hasher;
  uint64_t file_bytes = 0;  // bytes of the partial file that `hasher` has seen
  std::string last_error;
  bool complete = false;
  for (int attempt = 1; attempt <= kMaxAttempts && !complete; ++attempt) {
    if (attempt > 1) std::this_thread::sleep_for(std::chrono::milliseconds(250 * (attempt - 1)));
    struct stat st {};
    if (::fstat(f.fd, &st) != 0) throw Error(part + ": cannot stat (" + errno_text(errno) + ")");
    uint64_t have = static_cast<uint64_t>(st.st_size);
    if ((m.size >= 0 && have > static_cast<uint64_t>(m.size)) || file_bytes > have) {
      if (!truncate_partial(f.fd, hasher, file_bytes)) throw Error(part + ": cannot truncate (" + errno_text(errno) + ")");
      have = 0;
    }
    // Hash what an earlier run left, so the checksum covers the whole file.
    std::vector<char> buf;
    while (file_bytes < have) {
      buf.resize(1 << 20);
      const ssize_t got = ::pread(f.fd, buf.data(), std::min<uint64_t>(buf.size(), have - file_bytes),
                                  static_cast<off_t>(file_bytes));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) throw Error(part + ": cannot read (" + errno_text(got < 0 ? errno : EIO) + ")");
      hasher.update(buf.data(), static_cast<size_t>(got));
      file_bytes += static_cast<uint64_t>(got);
    }
    if (m.size >= 0 && have == static_cast<uint64_t>(m.size)) {
      complete = true;
      break;
    }

    CurlHandle h;
    Headers headers;
    c.setup(h, url, /*follow=*/true, &headers);
    Sink sink;
    sink.h = h.h;
    sink.fd = f.fd;
    sink.headers = &headers;
    sink.hasher = &hasher;
    sink.file_bytes = &file_bytes;
    sink.offset = have;
    // Always a Range, bounded by the known size: the Xet bridge that serves large LFS files answers
    // a GET without one with 400.
    const std::string range =
        std::to_string(have) + "-" + (m.size > 0 ? std::to_string(m.size - 1) : std::string());
    curl_easy_setopt(h.h, CURLOPT_RANGE, range.c_str());
    curl_easy_setopt(h.h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h.h, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt(h.h, CURLOPT_BUFFERSIZE, 256L * 1024);
    Progress progress;
    progress.enabled = c.progress;
    progress.name = file;
    progress.total = m.size;
    progress.file_bytes = &file_bytes;
    progress.stall_s = c.stall_s;
    progress.begin(have);
    curl_easy_setopt(h.h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h.h, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(h.h, CURLOPT_XFERINFODATA, &progress);
    const CURLcode rc = curl_easy_perform(h.h);
    progress.end();
    if (sink.write_errno != 0) throw Error(part + ": cannot write (" + errno_text(sink.write_errno) + ")");
    if (sink.wrong_range) {
      if (!truncate_partial(f.fd, hasher, file_bytes)) throw Error(part + ": cannot truncate (" + errno_text(errno) + ")");
      last_error = url + ": the server answered a resumed download with the wrong range";
      continue;
    }
    long status = 0;
    curl_easy_getinfo(h.h, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK && !(sink.discard && status >= 400)) {
      last_error = url + ": " +
                   (progress.stalled ? "no data for " + std::to_string(c.stall_s) + " s (HF_HUB_DOWNLOAD_TIMEOUT)"
                                     : h.error(rc));
      continue;
    }
    if (status == 416) {  // the partial file does not fit the server's file: start over
      if (!truncate_partial(f.fd, hasher, file_bytes)) throw Error(part + ": cannot truncate (" + errno_text(errno) + ")");
      last_error = url + ": HTTP 416 (range not satisfiable)";
      continue;
    }
    if (status == 429 || status >= 500) {
      last_error = url + ": HTTP " + std::to_string(status) + " " + one_line(sink.error_body, 120);
      continue;
    }
    if (status >= 300 || status < 200) {
      Response r;
      r.status = status;
      r.headers = headers;
      r.body = sink.error_body;
      c.http_error(r, url, file);
    }
    if (m.size >= 0 && file_bytes < static_cast<uint64_t>(m.size)) {
      last_error = url + ": transfer ended after " + std::to_string(file_bytes) + " of " + std::to_string(m.size) +
                   " bytes";
      continue;
    }
    if (m.size >= 0 && file_bytes > static_cast<uint64_t>(m.size)) {
      f.fd = (::close(f.fd), -1);
      ::unlink(part.c_str());
      throw Error(file + ": the server sent " + std::to_string(file_bytes) + " bytes, expected " +
                  std::to_string(m.size) + " [" + url + "]");
    }
    complete = true;
  }
  if (!complete)
    throw Error(last_error + " (gave up after " + std::to_string(kMaxAttempts) + " attempts; the partial download " +
                part + " is kept and resumes on the next run)");
  if (lfs) {
    const std::string got = hasher.hex_digest();
    if (got != m.etag) {
      f.fd = (::close(f.fd), -1);
      ::unlink(part.c_str());
      throw Error(file + ": checksum mismatch (expected " + m.etag + ", got " + got + ") [" + url + "]");
    }
  }
  if (::fsync(f.fd) != 0) throw Error(part + ": cannot write (" + errno_text(errno) + ")");
  f.fd = (::close(f.fd), -1);
  if (std::rename(part.c_str(), blob.c_str()) != 0)
    throw Error(blob + ": cannot rename into place (" + errno_text(errno) + ")");
}

struct Fetched {
  std::string file;
  std::string etag;
};

// Makes snapshots/<sha>/<file> a relative symlink to blobs/<etag> (a copy where the file system has
// no symlinks), replacing whatever was there.
void link_snapshot(const std::string& repo_dir, const std::string& sha, const Fetched& f) {
  const fs::path pointer = fs::path(repo_dir) / "snapshots" / sha / f.file;
  std::error_code ec;
  fs::create_directories(pointer.parent_path(), ec);
  if (ec) throw Error(pointer.parent_path().string() + ": cannot create (" + ec.message() + ")");
  std::string target = "../../";
  for (char ch : f.file)
    if (ch == '/') target += "../";
  target += "blobs/" + f.etag;
  if (fs::is_symlink(pointer, ec) && fs::read_symlink(pointer, ec).string() == target) return;
  const fs::path tmp = pointer.string() + ".tmp." + std::to_string(::getpid());
  fs::remove(tmp, ec);
  fs::create_symlink(target, tmp, ec);
  if (ec) {
    std::error_code ec2;
    fs::copy_file(fs::path(repo_dir) / "blobs" / f.etag, tmp, fs::copy_options::overwrite_existing, ec2);
    if (ec2) throw Error(pointer.string() + ": cannot create (" + ec.message() + ")");
  }
  fs::rename(tmp, pointer, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(pointer.string() + ": cannot create (" + ec.message() + ")");
  }
}

// A JSON answer of the Hub, or one line naming the URL.
nlohmann::json parse_api_answer(const Response& r, const std::string& url) {
  try {
    return nlohmann::json::parse(r.body);
  } catch (const nlohmann::json::exception& e) {
    const std::string what = e.what();
    throw Error(url + ": malformed answer from the Hub (" + what.substr(0, what.find('\n')) + ")");
  }
}

// The target of `Link: <URL>; rel="next"` (GitHub-style pagination, as the Hub's tree listing sends
// it), made absolute against `url`; "" when there is none.
std::string next_page(const Headers& headers, const std::string& url) {
  const std::string link = header(headers, "link");
  for (size_t open = link.find('<'); open != std::string::npos; open = link.find('<', open + 1)) {
    const size_t close = link.find('>', open);
    if (close == std::string::npos) break;
    const size_t end = std::min(link.find('<', close), link.size());
    std::string params = lower(link.substr(close + 1, end - close - 1));
    params.erase(std::remove(params.begin(), params.end(), ' '), params.end());
    if (params.find("rel=\"next\"") == std::string::npos && params.find("rel=next") == std::string::npos) continue;
    const std::string target = link.substr(open + 1, close - open - 1);
    if (target.rfind("http://", 0) == 0 || target.rfind("https://", 0) == 0) return target;
    if (!target.empty() && target.front() == '/') return origin(url) + target;
    return "";
  }
  return "";
}

// The names of a repository's files at a commit. The API's `siblings` list can be missing, empty or
// truncated on the real Hub; like the Python client's snapshot_download (missing, empty or over
// 50,000 entries), the list is then completed from the repository tree
// (GET /api/models/{repo}/tree/{commit}?recursive=true, paginated by Link headers). It is also
// completed when a file neurontrace needs is not in `siblings`, which catches any truncation.
class RepoFiles {
 public:
  RepoFiles(const Client& c, std::string sha, std::set<std::string> siblings)
      : c_(c), sha_(std::move(sha)), names_(std::move(siblings)) {
    if (names_.empty() || names_.size() > kSiblingsTrusted) list_tree();
  }
  bool has(const std::string& file) const { return names_.count(file) > 0; }
  // Lists the tree (once) unless every one of `files` is known.
  void complete_for(const std::vector<std::string>& files) {
    for (const auto& f : files)
      if (!has(f)) return list_tree();
  }
  const std::set<std::string>& names() const { return names_; }

 private:
  static constexpr size_t kSiblingsTrusted = 50000;
  static constexpr int kMaxPages = 100000;

  void list_tree() {
    if (tree_listed_) return;
    tree_listed_ = true;
    std::string url = c_.endpoint + "/api/models/" + c_.repo + "/tree/" + sha_ + "?recursive=true";
    std::set<std::string> seen;
    for (int page = 0; !url.empty(); ++page) {
      if (page == kMaxPages || !seen.insert(url).second)
        throw Error(url + ": the Hub's tree listing does not end (a page links back or there are over " +
                    std::to_string(kMaxPages) + " pages)");
      const Response r = c_.request_retrying(url, /*head=*/false, /*follow=*/true);
      if (r.rc != CURLE_OK) throw Error(url + ": " + r.error);
      if (r.status >= 300) c_.http_error(r, url, "");
      add_entries(parse_api_answer(r, url), url);
      url = next_page(r.headers, url);
    }
  }
  void add_entries(const nlohmann::json& page, const std::string& url) {
    if (!page.is_array()) throw Error(url + ": malformed answer from the Hub (the tree listing is not a list)");
    for (const auto& e : page)
      if (e.is_object() && e.value("type", "") == "file" && e.contains("path") && e["path"].is_string())
        names_.insert(e["path"].get<std::string>());
  }

  const Client& c_;
  std::string sha_;
  std::set<std::string> names_;
  bool tree_listed_ = false;
};

struct Revision {
  std::string sha;
  std::set<std::string> siblings;
};

// GET /api/models/{repo}/revision/main: the commit of main and the file list the API gives.
Revision main_revision(const Client& c) {
  const std::string api = c.endpoint + "/api/models/" + c.repo + "/revision/main";
  const Response r = c.request_retrying(api, /*head=*/false, /*follow=*/true);
  if (r.rc != CURLE_OK) throw Error(api + ": " + r.error);
  if (r.status >= 300) c.http_error(r, api, "");
  const nlohmann::json j = parse_api_answer(r, api);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string())
    throw Error(api + ": malformed answer from the Hub (no commit 'sha')");
  Revision rev;
  rev.sha = j["sha"].get<std::string>();
  if (!is_alnum_token(rev.sha)) throw Error(api + ": malformed commit hash '" + one_line(rev.sha, 80) + "'");
  if (j.contains("siblings") && j["siblings"].is_array())
    for (const auto& s : j["siblings"])
      if (s.is_object() && s.contains("rfilename") && s["rfilename"].is_string())
        rev.siblings.insert(s["rfilename"].get<std::string>());
  return rev;
}

// The files neurontrace reads from the repository: config, tokenizer files, and the weights (a
// single model.safetensors or the index; the shards follow from the index).
std::vector<std::string> wanted_files(RepoFiles& files, const std::string& repo_id) {
  files.complete_for({"config.json"});
  if (!files.has("config.json")) throw Error("repository '" + repo_id + "' has no config.json (not a transformers model?)");
  if (!files.has("model.safetensors.index.json")) files.complete_for({"model.safetensors"});
  const bool single = files.has("model.safetensors");
  if (!single && !files.has("model.safetensors.index.json")) {
    std::string others;
    for (const auto& s : files.names()) {
      const bool weights = s.ends_with(".bin") || s.ends_with(".pt") || s.ends_with(".pth") || s.ends_with(".h5") ||
                           s.ends_with(".msgpack") || s.ends_with(".gguf") || s.ends_with(".safetensors");
      if (weights) others += (others.empty() ? "" : ", ") + s;
      if (others.size() > 120) break;
    }
    throw Error("no safetensors weights in repo " + repo_id +
                " (only .bin?): neurontrace needs model.safetensors or model.safetensors.index.json" +
                (others.empty() ? std::string() : "; the repository has " + others));
  }
  std::vector<std::string> wanted;
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer.model",
                           "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt"})
    if (files.has(name)) wanted.push_back(name);
  wanted.push_back(single ? "model.safetensors" : "model.safetensors.index.json");
  return wanted;
}

// The shards `index` (the fetched index file) lists, each checked against the repository's files.
std::vector<std::string> index_shards(const std::string& index, RepoFiles& files, const std::string& repo_id) {
  std::vector<std::string> shards;
  try {
    shards = safetensors_index_shards(index);
  } catch (const Error& e) {
    throw Error(repo_id + ": model.safetensors.index.json: " + e.what());
  }
  files.complete_for(shards);
  for (const auto& shard : shards)
    if (!files.has(shard))
      throw Error(repo_id + ": model.safetensors.index.json lists shard '" + one_line(shard, 80) +
                  "', which is not in the repository");
  return shards;
}

// Fetches files of one commit into the cache: blobs first, snapshot links only once every blob is
// there (link_all), so an interrupted download never leaves a snapshot that looks complete. A file
// already linked in the snapshot (by neurontrace or the Python tools) is not fetched again.
class SnapshotFetcher {
 public:
  SnapshotFetcher(const Client& c, std::string sha)
      : c_(c), sha_(std::move(sha)), repo_dir_(hf_repo_dir(c.repo)), snapshot_(repo_dir_ + "/snapshots/" + sha_) {
    std::error_code ec;
    fs::create_directories(repo_dir_ + "/blobs", ec);
    if (ec) throw Error(repo_dir_ + "/blobs: cannot create (" + ec.message() + ")");
  }
  // Returns the local path of the file's content.
  std::string fetch(const std::string& file) {
    std::error_code ec;
    const std::string pointer = snapshot_ + "/" + file;
    if (fs::exists(pointer, ec)) return pointer;  // linked by an earlier run, its blob there
    const std::string url = c_.endpoint + "/" + c_.repo + "/resolve/" + sha_ + "/" + url_path(file);
    const FileMeta m = head_file(c_, url, file);
    const std::string blob = repo_dir_ + "/blobs/" + m.etag;
    if (!blob_ok(blob, m)) {
      BlobLock lock(hf_cache_dir() + "/.locks/" + fs::path(repo_dir_).filename().string() + "/" + m.etag + ".lock");
      if (!blob_ok(blob, m)) download_blob(c_, url, file, m, blob);
    }
    fetched_.push_back({file, m.etag});
    return blob;
  }
  // Links the fetched files into the snapshot and points refs/main at it; returns the snapshot.
  std::string link_all() {
    for (const auto& f : fetched_) link_snapshot(repo_dir_, sha_, f);
    std::error_code ec;
    fs::create_directories(repo_dir_ + "/refs", ec);
    std::string current;
    if (fs::exists(repo_dir_ + "/refs/main", ec)) {
      try {
        current = trim(read_file(repo_dir_ + "/refs/main"));
      } catch (const Error&) {
      }
    }
    if (current != sha_) write_file_atomic(repo_dir_ + "/refs/main", sha_);
    return snapshot_;
  }

 private:
  static bool blob_ok(const std::string& blob, const FileMeta& m) {
    std::error_code e;
    return fs::is_regular_file(blob, e) && (m.size < 0 || fs::file_size(blob, e) == static_cast<uintmax_t>(m.size));
  }

  const Client& c_;
  std::string sha_, repo_dir_, snapshot_;
  std::vector<Fetched> fetched_;
};

Client make_client(const std::string& repo_id) {
  Client c;
  c.endpoint = hf_endpoint();
  c.repo = repo_id;
  c.token = read_token();
  for (char ch : c.token.value)
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f)
      throw Error(c.token.source + ": the access token contains control characters");
  c.stall_s = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", 30);
  c.progress = ::isatty(STDERR_FILENO) == 1 && !env_flag_true(env("HF_HUB_DISABLE_PROGRESS_BARS"));
  return c;
}

}  // namespace

std::string hub_download_model(const std::string& repo_id) {
  if (!valid_repo_id(repo_id))
    throw Error("'" + repo_id + "' is not a valid Hugging Face repository id (ORG/NAME)");
  const Client c = make_client(repo_id);
  Revision rev = main_revision(c);
  RepoFiles files(c, rev.sha, std::move(rev.siblings));
  const std::vector<std::string> wanted = wanted_files(files, repo_id);
  if (c.progress)
    std::fprintf(stderr, "downloading %s (commit %.10s) from %s\n", repo_id.c_str(), rev.sha.c_str(), c.endpoint.c_str());
  SnapshotFetcher fetcher(c, rev.sha);
  for (const auto& file : wanted) {
    const std::string local = fetcher.fetch(file);
    if (file == "model.safetensors.index.json")
      for (const auto& shard : index_shards(local, files, repo_id)) fetcher.fetch(shard);
  }
  return fetcher.link_all();
}

std::string hub_download_files(const std::string& repo_id, const std::vector<std::string>& wanted) {
  if (!valid_repo_id(repo_id))
    throw Error("'" + repo_id + "' is not a valid Hugging Face repository id (ORG/NAME)");
  const Client c = make_client(repo_id);
  Revision rev = main_revision(c);
  RepoFiles files(c, rev.sha, std::move(rev.siblings));
  files.complete_for(wanted);
  if (c.progress)
    std::fprintf(stderr, "downloading from %s (commit %.10s) at %s\n", repo_id.c_str(), rev.sha.c_str(), c.endpoint.c_str());
  SnapshotFetcher fetcher(c, rev.sha);
  for (const auto& file : wanted)
    if (files.has(file)) fetcher.fetch(file);
  return fetcher.link_all();
}

}  // namespace nt
