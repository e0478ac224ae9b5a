#pragma once
// Two atlas files compared tensor by tensor (shared by the atlas tests): a sharded or MPI scan
// against one process.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "test_support.h"

namespace nt::test {

template <class T>
std::vector<T> tensor(const nt::SafetensorsFile& f, const std::string& name) {
  const nt::TensorInfo& info = f.get(name);
  std::vector<T> v(static_cast<size_t>(info.numel()));
  EXPECT_EQ(v.size() * sizeof(T), info.end - info.begin) << name;
  if (!v.empty()) std::memcpy(v.data(), f.data(info), v.size() * sizeof(T));
  return v;
}

// Every tensor of two atlas files: integers and records equal, moments equal to 1e-12 relative.
inline void expect_same_atlas(const std::string& a_path, const std::string& b_path) {
  nt::SafetensorsFile a(a_path), b(b_path);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (const auto& t : a.tensors()) {
    const nt::TensorInfo& u = b.get(t.name);
    ASSERT_EQ(t.shape, u.shape) << t.name;
    if (t.name == "mean" || t.name == "m2" || t.name == "m3" || t.name == "m4") {
      const auto x = tensor<double>(a, t.name), y = tensor<double>(b, t.name);
      for (size_t i = 0; i < x.size(); ++i)
        ASSERT_LE(std::abs(x[i] - y[i]), 1e-12 * std::max({std::abs(x[i]), std::abs(y[i]), 1e-300})) << t.name << "[" << i << "]";
    } else {
      ASSERT_EQ(0, std::memcmp(a.data(t), b.data(u), t.end - t.begin)) << t.name;
    }
  }
}

// Two units' JSON files: the moments' figures to 1e-12 (a merge adds them up in another order than
// one process; relative for mean and variance, and for the shape figures, which are of order 1 and
// cancel near 0, absolute), everything else (records, histogram, density, logit effects) equal.
inline void expect_same_unit_json(const std::string& a_path, const std::string& b_path) {
  auto a = nlohmann::json::parse(read_text(a_path));
  auto b = nlohmann::json::parse(read_text(b_path));
  for (const std::string field : {"mean", "variance", "skewness", "kurtosis"}) {
    const double x = a.at(field).get<double>(), y = b.at(field).get<double>();
    const bool shape = field == "skewness" || field == "kurtosis";
    EXPECT_NEAR(x, y, 1e-12 * (shape ? std::max(1.0, std::abs(x)) : std::abs(x))) << b_path << " " << field;
    a.erase(field);
    b.erase(field);
  }
  EXPECT_EQ(a, b) << b_path;
}

}  // namespace nt::test
