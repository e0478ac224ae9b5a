#pragma once
// Downloads a model from the Hugging Face Hub into the Hugging Face cache, in the layout the Python
// `huggingface_hub` library uses, so both share one cache:
//   <cache>/models--ORG--NAME/blobs/<etag>                      file contents, named by ETag
//   <cache>/models--ORG--NAME/blobs/<etag>.incomplete           partial download (resumed with Range)
//   <cache>/models--ORG--NAME/snapshots/<commit>/<file>         relative symlink -> ../../blobs/<etag>
//   <cache>/models--ORG--NAME/refs/main                         the commit hash
//   <cache>/.locks/models--ORG--NAME/<etag>.lock                flock()ed while a blob is written
//
// Protocol: GET {endpoint}/api/models/{repo}/revision/main gives the commit ("sha") and the file
// list ("siblings"); when that list is missing, empty, over 50,000 entries or lacks a file
// neurontrace needs, GET {endpoint}/api/models/{repo}/tree/{sha}?recursive=true (pages linked by
// `Link: <...>; rel="next"`) completes it. Each wanted file is HEADed at
// {endpoint}/{repo}/resolve/{sha}/{file} (ETag / X-Linked-Etag, X-Linked-Size; redirects to the same
// server, such as the Hub's relative 307 to /api/resolve-cache/..., are followed, a redirect to a
// CDN is not) and then fetched from the same URL following redirects, always with a Range header
// bounded by the size (the Xet bridge refuses a GET of a large file without one). The token goes to
// the endpoint's host only: libcurl keeps it on same-host redirects and drops it on others. LFS files
// (ETag = 64 hex digits, the SHA-256 of the content) are verified before they are renamed into place.
//
// Environment (io/hf_environment.h): the cache folder, HF_ENDPOINT, the offline switch; HF_TOKEN or
// HUGGING_FACE_HUB_TOKEN, else the token file of `huggingface-cli login`, sent as
// "Authorization: Bearer <token>"; HF_HUB_DOWNLOAD_TIMEOUT (seconds without a byte before a
// transfer is abandoned, default 30); HF_HUB_DISABLE_PROGRESS_BARS.
#include <string>
#include <vector>

namespace nt {

// Fetches the files neurontrace needs (config, tokenizer files, safetensors weights: a single
// model.safetensors or the index and every shard it lists) of `repo_id` at revision main into the
// cache and returns the snapshot folder. Files already linked in the cached snapshot are not fetched
// again; a partial download is resumed. Each transfer is tried up to 3 times. Throws nt::Error (one
// line naming the repository, file or URL) on HTTP errors (a rejected token says "token rejected"),
// network failures, checksum mismatches and repositories without safetensors weights.
std::string hub_download_model(const std::string& repo_id);

// Fetches those of `files` (paths inside the repository, e.g. "blocks.8.hook_resid_pre/cfg.json")
// that the repository has at revision main into the cache, the same way, and returns the snapshot
// folder; the caller checks which arrived. Used for SAE folders (sae/sae_open.h).
std::string hub_download_files(const std::string& repo_id, const std::vector<std::string>& files);

}  // namespace nt
