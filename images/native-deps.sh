#!/bin/sh
# native-deps.sh install|finish: the one native part of mindzoo (its JPEG crop decoder, setup.py) in an image.
#   install  before the package: libjpeg-turbo to run it, and a compiler + headers to build it (Debian bases).
#   finish   after the package: check that the decoder loads, then remove the compiler and headers again, so
#            that no compiler is left in the image's filesystem.
# A base without apt-get builds no decoder: the image still trains, with MindSpore's own (slower) decoder,
# and says so here.
set -eu
build="gcc libc6-dev libjpeg62-turbo-dev"
case "$1" in
  install)
    if ! command -v apt-get >/dev/null; then
      echo "note: no apt-get in this base: mindzoo's JPEG crop decoder is not built (MindSpore's is used)"; exit 0
    fi
    apt-get update -qq
    # libjpeg62-turbo named on its own: marked as wanted, it stays when the build packages are purged.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libjpeg62-turbo $build >/dev/null
    rm -rf /var/lib/apt/lists/* ;;
  finish)
    decoder=$(/opt/mindzoo/bin/python -c "from mindzoo.data import cropdecode; print(cropdecode.decoder())")
    echo "mindzoo training decoder: $decoder"
    if command -v apt-get >/dev/null; then
      [ "$decoder" = libjpeg-turbo ] || { echo "error: the JPEG crop decoder did not build" >&2; exit 1; }
      DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove $build >/dev/null
    fi ;;
  *) echo "usage: $0 install|finish" >&2; exit 2 ;;
esac
