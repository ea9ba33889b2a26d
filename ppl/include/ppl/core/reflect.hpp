#pragma once
/// Options structs that round-trip through JSON, by Boost.Hana reflection.
///
///   struct AirOptions {
///     BOOST_HANA_DEFINE_STRUCT(AirOptions, (int, max_steps), (double, lr));
///   };
///   nlohmann::json j = ppl::options_to_json(opts);
///   auto back = ppl::options_from_json<AirOptions>(j);   // unknown keys throw
///
/// BOOST_HANA_DEFINE_STRUCT takes at most 40 members; PPL_DEFINE_OPTIONS is
/// the same for up to 64.
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/hana.hpp>
#include <boost/preprocessor/cat.hpp>
#include <boost/preprocessor/punctuation/comma_if.hpp>
#include <boost/preprocessor/seq/for_each.hpp>
#include <boost/preprocessor/seq/for_each_i.hpp>
#include <boost/preprocessor/stringize.hpp>
#include <boost/preprocessor/tuple/elem.hpp>
#include <boost/preprocessor/variadic/to_seq.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ppl/core/errors.hpp>

#define PPL_DETAIL_OPTION_FIELD(r, type, member) BOOST_PP_TUPLE_ELEM(2, 0, member) BOOST_PP_TUPLE_ELEM(2, 1, member);
#define PPL_DETAIL_OPTION_NAME(r, type, i, member) \
  BOOST_PP_COMMA_IF(i) BOOST_PP_STRINGIZE(BOOST_PP_TUPLE_ELEM(2, 1, member))
#define PPL_DETAIL_OPTION_ACCESSOR(r, type, i, member)                                                    \
  BOOST_PP_COMMA_IF(i)                                                                                     \
  ::boost::hana::make_pair(::boost::hana::struct_detail::prepare_member_name<i, member_names>(),           \
                           ::boost::hana::struct_detail::member_ptr<                                       \
                               decltype(&type::BOOST_PP_TUPLE_ELEM(2, 1, member)),                         \
                               &type::BOOST_PP_TUPLE_ELEM(2, 1, member)>{})

/// BOOST_HANA_DEFINE_STRUCT(type, (T1, name1), (T2, name2), ...) for up to 64
/// members (Boost.Preprocessor's variadic limit) where Hana stops at 40: the
/// members are declared, and the struct is a Hana Struct of them in order.
#define PPL_DEFINE_OPTIONS(type, ...)                                                                        \
  BOOST_PP_SEQ_FOR_EACH(PPL_DETAIL_OPTION_FIELD, type, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))              \
  struct hana_accessors_impl {                                                                             \
    static constexpr auto apply() {                                                                        \
      struct member_names {                                                                                \
        static constexpr auto get() {                                                                      \
          return ::boost::hana::make_tuple(                                                                \
              BOOST_PP_SEQ_FOR_EACH_I(PPL_DETAIL_OPTION_NAME, type, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))); \
        }                                                                                                  \
      };                                                                                                   \
      return ::boost::hana::make_tuple(                                                                    \
          BOOST_PP_SEQ_FOR_EACH_I(PPL_DETAIL_OPTION_ACCESSOR, type, BOOST_PP_VARIADIC_TO_SEQ(__VA_ARGS__))); \
    }                                                                                                      \
  }

namespace ppl {

template <class T>
concept HanaStruct = boost::hana::Struct<T>::value;

template <HanaStruct T>
nlohmann::json options_to_json(const T& options);

namespace detail {
template <class V>
nlohmann::json field_to_json(const V& v) {
  if constexpr (HanaStruct<V>) return options_to_json(v);
  else return nlohmann::json(v);
}
template <class V>
void field_from_json(const nlohmann::json& j, V& out, const std::string& path);
}  // namespace detail

/// Every field of a Hana struct as a JSON object (nested structs nested).
template <HanaStruct T>
nlohmann::json options_to_json(const T& options) {
  nlohmann::json j = nlohmann::json::object();
  boost::hana::for_each(boost::hana::keys(options), [&](auto key) {
    j[boost::hana::to<char const*>(key)] = detail::field_to_json(boost::hana::at_key(options, key));
  });
  return j;
}

/// Reads fields present in `j` over `defaults`. A key that names no field,
/// or a value of the wrong type, is a ppl::Error naming the key.
template <HanaStruct T>
T options_from_json(const nlohmann::json& j, T defaults = {}, const std::string& path = "") {
  if (!j.is_object()) throw Error(fmt::format("options{}: expected a JSON object", path.empty() ? "" : " " + path));
  for (auto it = j.begin(); it != j.end(); ++it) {
    bool known = false;
    boost::hana::for_each(boost::hana::keys(defaults), [&](auto key) {
      known = known || it.key() == boost::hana::to<char const*>(key);
    });
    if (!known) {
      std::vector<std::string> names;
      boost::hana::for_each(boost::hana::keys(defaults),
                            [&](auto key) { names.emplace_back(boost::hana::to<char const*>(key)); });
      throw Error(fmt::format("options: unknown key \"{}{}\" (known: {})", path, it.key(), fmt::join(names, ", ")));
    }
  }
  boost::hana::for_each(boost::hana::keys(defaults), [&](auto key) {
    const std::string name = boost::hana::to<char const*>(key);
    if (j.contains(name)) detail::field_from_json(j.at(name), boost::hana::at_key(defaults, key), path + name);
  });
  return defaults;
}

namespace detail {
template <class V>
void field_from_json(const nlohmann::json& j, V& out, const std::string& path) {
  if constexpr (HanaStruct<V>) {
    out = options_from_json<V>(j, out, path + ".");
  } else {
    try {
      out = j.get<V>();
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("options: key \"{}\" has value {}, of the wrong type", path, j.dump()));
    }
  }
}
}  // namespace detail

}  // namespace ppl
