# Stan's NUTS (rstan) on the models of bench/mcmc_bench.cpp, for
# bench/compare/nuts_vs_stan. Writes the draws after warm-up, the times of
# each chain (rstan's get_elapsed_time, compilation excluded) and the
# divergences as JSON, with 0-based element names as ppl_bench_mcmc writes.
#
#   Rscript stan_nuts.R MODEL DATA.json OUT.json CHAINS WARMUP SAMPLES SEED
suppressPackageStartupMessages({
  library(rstan)
  library(jsonlite)
})
args <- commandArgs(trailingOnly = TRUE)
model <- args[1]
data <- fromJSON(args[2])
out <- args[3]
chains <- as.integer(args[4])
warmup <- as.integer(args[5])
samples <- as.integer(args[6])
seed <- as.integer(args[7])

code <- list(
  eight_schools = "
data { int<lower=0> J; vector[J] y; vector<lower=0>[J] sigma; }
parameters { real mu; real<lower=0> tau; vector[J] theta_tilde; }
model {
  mu ~ normal(0, 5);
  tau ~ cauchy(0, 5);
  theta_tilde ~ normal(0, 1);
  y ~ normal(mu + tau * theta_tilde, sigma);
}",
  logistic = "
data { int<lower=0> N; int<lower=0> D; matrix[N, D] X; int<lower=0, upper=1> y[N]; }
parameters { vector[D] w; real b; }
model {
  w ~ normal(0, 1);
  b ~ normal(0, 1);
  y ~ bernoulli_logit(X * w + b);
}")
stan_data <- switch(model,
  eight_schools = list(J = length(data$y), y = data$y, sigma = data$sigma),
  logistic = list(N = nrow(data$X), D = ncol(data$X), X = data$X, y = as.integer(data$y)),
  stop("unknown model ", model))

compiled <- stan_model(model_code = code[[model]], model_name = model)
fit <- sampling(compiled, data = stan_data, chains = chains, iter = warmup + samples, warmup = warmup,
                seed = seed, cores = 1, refresh = 0)

draws <- as.array(fit)  # iterations x chains x parameters
params <- list()
for (name in dimnames(draws)[[3]]) {
  if (name == "lp__") next
  # "theta_tilde[1]" -> "theta_tilde[0]"
  element <- sub("\\[([0-9]+)\\]$", "", name)
  index <- regmatches(name, regexpr("[0-9]+(?=\\]$)", name, perl = TRUE))
  if (length(index) == 1) element <- sprintf("%s[%d]", element, as.integer(index) - 1L)
  params[[element]] <- lapply(seq_len(chains), function(c) draws[, c, name])
}
times <- get_elapsed_time(fit)
divergences <- sum(sapply(get_sampler_params(fit, inc_warmup = FALSE), function(p) sum(p[, "divergent__"])))
step_size <- sapply(get_sampler_params(fit, inc_warmup = FALSE), function(p) p[1, "stepsize__"])
depth <- sapply(get_sampler_params(fit, inc_warmup = FALSE), function(p) mean(p[, "treedepth__"]))
write(toJSON(list(implementation = "stan", model = model, chains = chains, warmup = warmup, draws = samples,
                  divergences = divergences, warmup_seconds = unname(times[, "warmup"]),
                  sampling_seconds = unname(times[, "sample"]), step_size = unname(step_size),
                  mean_tree_depth = unname(depth), params = params),
             auto_unbox = TRUE, digits = NA), out)
