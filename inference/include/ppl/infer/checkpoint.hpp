#pragma once
/// Checkpoints: parameters, optimiser state, baseline statistics, the step
/// counter and the CPU random state in one file, written atomically.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <ppl/infer/elbo.hpp>
#include <ppl/infer/optim.hpp>

namespace ppl::infer {

/// Writes every parameter of ppl::param_store() (with its constraint), the
/// optimiser's moments and step counts and its learning-rate schedule's
/// state, the Elbo's running baselines, `step`
/// and the state of the CPU generator (torch's default, or the thread's one
/// inside ppl::handlers::seed) to `path` atomically (ppl::save_archive).
/// `user` (when not null) is kept in the archive's metadata under "user"
/// (`ppl::read_archive_metadata(path)["user"]`), e.g. the configuration that
/// the checkpoint belongs to. Throws ppl::Error naming the path on I/O failure.
void save_checkpoint(const std::filesystem::path& path, const Elbo& elbo, const Optimiser& optimiser, int64_t step,
                     const nlohmann::json& user = nullptr);
/// What save_checkpoint writes, as an archive in memory (to send to other
/// processes, see ppl/infer/distributed.hpp).
TensorArchive checkpoint_archive(const Elbo& elbo, const Optimiser& optimiser, int64_t step,
                                 const nlohmann::json& user = nullptr);
/// load_checkpoint of an archive read elsewhere; `source` names it in errors.
int64_t load_checkpoint(const TensorArchive& archive, const std::string& source, Elbo& elbo, Optimiser& optimiser);
/// Restores what save_checkpoint wrote: parameters into ppl::param_store()
/// (in place when present), optimiser and Elbo state, the generator; returns
/// the step counter. Throws ppl::Error naming the path for a missing,
/// truncated, damaged (checksum) or foreign file, or one whose generator
/// state is not the size this libtorch's generator has.
int64_t load_checkpoint(const std::filesystem::path& path, Elbo& elbo, Optimiser& optimiser);

/// Removes from a checkpoint archive every parameter whose name starts with
/// one of `prefixes`, with its optimiser moments and its value as a baseline
/// network's weight, so that load_checkpoint leaves those parameters at the
/// values they have in the program now (a fresh initialisation) with a fresh
/// Adam state, and restores the rest. Returns the names of the removed
/// parameters of ppl::param_store() (baseline networks' weights are not
/// among them), sorted.
/// Throws ppl::ArgumentError naming `source` and a prefix that no parameter
/// of the archive starts with.
std::vector<std::string> drop_parameters(TensorArchive& archive, const std::vector<std::string>& prefixes,
                                         const std::string& source);

/// The same for an `Svi` (any model and guide).
template <class S>
void save_checkpoint(const std::filesystem::path& path, S& svi, const nlohmann::json& user = nullptr) {
  save_checkpoint(path, svi.elbo(), svi.optimiser(), svi.steps(), user);
}
template <class S>
void load_checkpoint(const std::filesystem::path& path, S& svi) {
  svi.set_steps(load_checkpoint(path, svi.elbo(), svi.optimiser()));
}

}  // namespace ppl::infer
