#pragma once
/// Options structs that round-trip through JSON, by Boost.Hana reflection.
///
///   struct AirOptions {
///     BOOST_HANA_DEFINE_STRUCT(AirOptions, (int, max_steps), (double, lr));
///   };
///   nlohmann::json j = ppl::options_to_json(opts);
///   auto back = ppl::options_from_json<AirOptions>(j);   // unknown keys throw
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include <boost/hana.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <ppl/core/errors.hpp>

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
