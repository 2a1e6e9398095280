// gtest_adapter.cpp - runs the shared hpt cases as GoogleTest tests (host and qemu-user rings).
// Each case becomes <group>.<name>/<arch>_<mode>, so a typed case shows once per format.
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "hpt_test.hpp"

namespace {

class SharedCase : public testing::Test {
 public:
  explicit SharedCase(hpt::CaseFn fn) : fn_(fn) {}
  void TestBody() override {
    hpt::Ctx ctx;
    fn_(ctx);
    if (ctx.failures) {
      ADD_FAILURE() << ctx.failures << " check(s) failed (details above)";
    } else if (ctx.skip_reason) {
      GTEST_SKIP() << ctx.skip_reason;
    }
  }

 private:
  hpt::CaseFn fn_;
};

std::string gtest_safe(std::string s) {
  for (char& c : s)
    if (c == '-' || c == '.' || c == '/') c = '_';
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  hpt::g_out = [](const char* s) { std::fputs(s, stdout); };
  testing::InitGoogleTest(&argc, argv);
  for (hpt::Case* c = hpt::g_cases; c; c = c->next) {
    std::string name = c->name;
    if (*c->arch || *c->mode) name += "/" + gtest_safe(std::string(c->arch) + "_" + c->mode);
    testing::RegisterTest(c->group, name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [fn = c->fn]() -> testing::Test* { return new SharedCase(fn); });
  }
  return RUN_ALL_TESTS();
}
