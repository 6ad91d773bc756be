#!/bin/sh
# The Debian packages the test suite needs, in one place: the README's test command (and so
# .ci/run) runs this first. Does nothing when they are all installed already.
#   cmake, g++, pkg-config, FFmpeg's development libraries: pip compiles the vpdq package
#   (Meta's vPDQ bindings, the test oracle for our video hashes) against them.
#   chromium, fonts-liberation: the web console's browser tests drive Debian's Chromium through
#   Playwright (whose own browser download is not used), with fonts for readable screenshots.
#   wrk: the HTTP load generator scripts/bench_api.py drives the server with (small).
#   prometheus: for promtool, which checks and unit-tests the alert rules in docs/.
#   swig, ffmpeg: pip builds tmkpy (TMK+PDQF video hashes, hashdb[tmk]) with swig, and tmkpy
#   decodes videos by running the ffmpeg program.
# With --eval, also the image corpus of scripts/eval_matching.py (clip art, emoji, desktop
# backgrounds: about 350 MB, so not for the test suite, whose small evaluation draws its images):
# see scripts/eval_corpus.py for what each package gives and its licence.
set -eu
PACKAGES="cmake g++ pkg-config libavcodec-dev libavdevice-dev libavfilter-dev libavformat-dev libavutil-dev
libswresample-dev libswscale-dev chromium fonts-liberation wrk prometheus swig ffmpeg"
if [ "${1:-}" = "--eval" ]; then
    PACKAGES="$PACKAGES openclipart-png fonts-noto-color-emoji plasma-workspace-wallpapers mate-backgrounds
lomiri-wallpapers-16.04 ukui-wallpapers"
fi
missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing="$missing $package"
done
[ -z "$missing" ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing Debian packages:$missing" >&2
$sudo apt-get update -q >&2
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing >&2
