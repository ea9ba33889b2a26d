"""Training throughput of the Pyro AIR example (examples/air/air.py of a Pyro
source tree, imported from there, not copied) on multi-MNIST scenes written by
`ppl data generate multi-mnist-2`, with the architecture sizes of ppl's AIR
defaults. Prints one JSON line.

    python3 pyro_air.py --pyro-src DIR --images DIR [--steps N] [--batch-size B]
"""
import argparse
import json
import os
import sys
import time


def load_images(folder):
    import numpy as np
    from PIL import Image

    names = sorted(n for n in os.listdir(folder) if n.endswith(".png"))
    if not names:
        sys.exit(f"pyro_air.py: no PNG images in {folder}; write them with `ppl data generate multi-mnist-2`")
    images = [np.asarray(Image.open(os.path.join(folder, n)).convert("L"), dtype=np.float32) / 255.0 for n in names]
    return np.stack(images)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pyro-src", required=True, help="Pyro source tree (holds examples/air/air.py)")
    parser.add_argument("--images", required=True, help="folder of 50 x 50 PNG scenes")
    parser.add_argument("--steps", type=int, default=200, help="timed SVI steps")
    parser.add_argument("--warmup", type=int, default=20, help="untimed SVI steps first")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    air_dir = os.path.join(args.pyro_src, "examples", "air")
    if not os.path.isfile(os.path.join(air_dir, "air.py")):
        sys.exit(f"pyro_air.py: {air_dir}/air.py not found; --pyro-src must be a Pyro source tree")
    sys.path.insert(0, args.pyro_src)
    sys.path.insert(0, air_dir)

    import torch
    import pyro
    import pyro.optim as optim
    from pyro.infer import SVI, TraceGraph_ELBO
    from air import AIR

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    pyro.set_rng_seed(0)
    x = torch.from_numpy(load_images(args.images))
    if x.shape[1:] != (50, 50):
        sys.exit(f"pyro_air.py: images are {tuple(x.shape[1:])}, expected 50 x 50")

    # The sizes of ppl's AirOptions::defaults() (Pyro's README settings for 0-2 digits).
    air = AIR(num_steps=3, x_size=50, window_size=28, z_what_size=50, rnn_hidden_size=256,
              encoder_net=[200], decoder_net=[200], predict_net=[200], bl_predict_net=[200],
              decoder_output_bias=-2.0, decoder_output_use_sigmoid=True, use_masking=True, use_baselines=True,
              scale_prior_mean=3.0, scale_prior_sd=0.2, pos_prior_mean=0.0, pos_prior_sd=1.0, likelihood_sd=0.3)
    adam = optim.Adam(lambda name: {"lr": 1e-1 if "bl_" in name else 1e-4})
    svi = SVI(air.model, air.guide, adam, loss=TraceGraph_ELBO())

    # The truncated geometric prior on the count, p(n) ~ k^n for n = 0..3 with
    # k = 0.01, as per-step success probabilities (ppl's count_prior_trials).
    k, steps = 0.01, 3
    tail = [sum(k ** m for m in range(n, steps + 1)) for n in range(steps + 1)]
    trials = [tail[t + 1] / tail[t] for t in range(steps)]

    def z_pres_prior_p(t):
        return trials[t]

    for _ in range(args.warmup):
        svi.step(x, batch_size=args.batch_size, z_pres_prior_p=z_pres_prior_p)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        svi.step(x, batch_size=args.batch_size, z_pres_prior_p=z_pres_prior_p)
    seconds = time.perf_counter() - t0
    print(json.dumps({
        "implementation": "pyro",
        "pyro": pyro.__version__,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "steps": args.steps,
        "seconds": seconds,
        "images_per_second": args.steps * args.batch_size / seconds,
    }))


if __name__ == "__main__":
    main()
