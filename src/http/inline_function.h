// A move-only callable stored in place: never a heap allocation. A callable larger than
// `Capacity` bytes does not compile, so a capture that grows is caught by the build, not
// found later in a profile. For the per-request callbacks of the HTTP path, where
// std::function would allocate for any capture over two pointers.
#pragma once

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace balanced::http {

template <class Signature, size_t Capacity>
class InlineFunction;

template <class R, class... Args, size_t Capacity>
class InlineFunction<R(Args...), Capacity> {
 public:
  InlineFunction() = default;

  template <class F>
    requires(!std::is_same_v<std::decay_t<F>, InlineFunction> &&
             std::is_invocable_r_v<R, std::decay_t<F>&, Args...>)
  InlineFunction(F&& callable) {  // NOLINT(google-explicit-constructor): as std::function
    using T = std::decay_t<F>;
    static_assert(sizeof(T) <= Capacity, "the callable's captures exceed the InlineFunction's capacity");
    static_assert(alignof(T) <= alignof(std::max_align_t), "over-aligned callable");
    static_assert(std::is_nothrow_move_constructible_v<T>, "the callable must move without throwing");
    ::new (static_cast<void*>(storage_)) T(std::forward<F>(callable));
    ops_ = &kOps<T>;
  }

  InlineFunction(InlineFunction&& other) noexcept { take(other); }
  InlineFunction& operator=(InlineFunction&& other) noexcept {
    if (this != &other) {
      reset();
      take(other);
    }
    return *this;
  }
  InlineFunction(const InlineFunction&) = delete;
  InlineFunction& operator=(const InlineFunction&) = delete;
  ~InlineFunction() { reset(); }

  explicit operator bool() const { return ops_ != nullptr; }

  // REQUIRES: holds a callable.
  R operator()(Args... args) { return ops_->call(storage_, std::forward<Args>(args)...); }

 private:
  struct Ops {
    R (*call)(void* self, Args&&... args);
    void (*move_to)(void* from, void* to) noexcept;  // move-constructs at `to`, destroys `from`
    void (*destroy)(void* self) noexcept;
  };

  template <class T>
  static constexpr Ops kOps{
      [](void* self, Args&&... args) -> R {
        return (*static_cast<T*>(self))(std::forward<Args>(args)...);
      },
      [](void* from, void* to) noexcept {
        ::new (to) T(std::move(*static_cast<T*>(from)));
        static_cast<T*>(from)->~T();
      },
      [](void* self) noexcept { static_cast<T*>(self)->~T(); },
  };

  void take(InlineFunction& other) noexcept {
    if (other.ops_ == nullptr) return;
    other.ops_->move_to(other.storage_, storage_);
    ops_ = other.ops_;
    other.ops_ = nullptr;
  }
  void reset() noexcept {
    if (ops_ != nullptr) ops_->destroy(storage_);
    ops_ = nullptr;
  }

  alignas(std::max_align_t) std::byte storage_[Capacity];
  const Ops* ops_ = nullptr;
};

}  // namespace balanced::http
