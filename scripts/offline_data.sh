# Sourced by .ci/run and run_all.sh: if the offline CIFAR-10 copy (cifar10-jpeg.tar.gz) is
# at $HYDRAMIX_OFFLINE_ARCHIVE or beside the repo (../shared/data/), extract it once into the
# data root ($HYDRAMIX_DATA or the user cache), after checking its sha256. Without it,
# datasets are downloaded from their official URLs.
for candidate in "${HYDRAMIX_OFFLINE_ARCHIVE:-}" "$REPO/../shared/data/cifar10-jpeg.tar.gz"; do
  if [ -n "$candidate" ] && [ -f "$candidate" ]; then
    "$PY" -c 'import sys; from hydramix_core.data import _main; _main(sys.argv[1:])' --install-archive "$candidate" >/dev/null
    break
  fi
done
