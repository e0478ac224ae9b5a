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
// list ("siblings"); each wanted file is HEADed at {endpoint}/{repo}/resolve/{sha}/{file}
// (X-Repo-Commit, ETag / X-Linked-Etag, X-Linked-Size; a redirect to a CDN is not followed for
// the metadata) and then fetched from the same URL following redirects (libcurl does not send the
// Authorization header to another host). LFS files (ETag = 64 hex digits, the SHA-256 of the content)
// are verified before they are renamed into place.
//
// Environment: HF_ENDPOINT (default https://huggingface.co); HF_TOKEN or HUGGING_FACE_HUB_TOKEN, else
// the token file of `huggingface-cli login` ($HF_TOKEN_PATH, else $HF_HOME/token, else
// ~/.cache/huggingface/token), sent as "Authorization: Bearer <token>"; HF_HUB_OFFLINE;
// HF_HUB_DOWNLOAD_TIMEOUT (seconds without a byte before a transfer is abandoned, default 30);
// HF_HUB_DISABLE_PROGRESS_BARS. The cache folder is the one of model_resolver.h (HF_HUB_CACHE, ...).
#include <string>

namespace nt {

// True when HF_HUB_OFFLINE is 1, true, yes or on (any case).
bool hf_hub_offline();
// $HF_ENDPOINT without a trailing '/', else "https://huggingface.co".
std::string hf_endpoint();

// Fetches the files neurontrace needs (config, tokenizer files, safetensors weights: a single
// model.safetensors or the index and every shard it lists) of `repo_id` at revision main into the
// cache and returns the snapshot folder. Files already in the cache are not fetched again; a partial
// download is resumed. Each transfer is tried up to 3 times. Throws nt::Error (one line naming the
// repository, file or URL) on HTTP errors, network failures, checksum mismatches and repositories
// without safetensors weights.
std::string hub_download_model(const std::string& repo_id);

}  // namespace nt
