#!/usr/bin/env bash
# Regenerate samples/ from the shared corpus.
# Usage: samples/make_samples.sh [CORPUS_DIR]   (default: <repo root>/../shared/corpus)
# Output is byte-identical on re-runs with the same ffmpeg/libx264 build
# (made with Debian ffmpeg 5.1.9-0+deb12u1; encoder runs single-threaded so the
# thread count of the machine does not change the bytes).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
corpus="${1:-$root/../shared/corpus}"
out="$here"
ffmpeg="${FFMPEG:-ffmpeg}"

# Check the inputs are the corpus files the samples were cut from (SHA-256 prefix from MANIFEST.tsv).
check() {
  local file="$1" want="$2" got
  got="$(sha256sum "$corpus/$file" | cut -c1-16)"
  if [[ "$got" != "$want" ]]; then
    echo "error: $corpus/$file has sha256 $got..., expected $want..." >&2
    exit 1
  fi
}
check "moviepy/big_buck_bunny_0_30.webm"           "3f75b7340272df50"
check "mdn/tears-of-steel-battle-clip-medium.webm" "c47f696d781dcc51"
check "sports/basketball.mp4"                      "dd054508285c3020"
check "mdn/friday.mp4"                             "339504acdef44f4e"
check "mdn/flower.mp4"                             "0cd83d944a6ca782"
check "intel-gif/head-pose-face-detection-female.gif" "67646830ba9551b9"
check "intel-gif/fruit-and-vegetable-detection.gif"      "e4cd631701146c47"
check "intel-asl/asl-night.mkv"                          "402fcf62d26c69b4"
check "intel-asl/asl-learn.mkv"                          "9e05d501b897fb95"
check "intel-asl/asl-school.mkv"                         "3b39a9bad8687101"

# Common encode settings: H.264 yuv420p, CRF, faststart, no audio, no metadata, bit-exact.
enc=(-an -sn -dn -map_metadata -1 -c:v libx264 -preset medium -threads 1 -pix_fmt yuv420p
     -movflags +faststart -fflags +bitexact -flags:v +bitexact)
# Fit inside 640x640 (long side <= 640), even dimensions, square pixels.
fit="scale=640:640:force_original_aspect_ratio=decrease:force_divisible_by=2,setsar=1"

# cut SRC START DURATION DEST : accurate input seek, re-encode at CRF 28.
cut() {
  local src="$1" start="$2" dur="$3" dest="$4"
  "$ffmpeg" -nostdin -hide_banner -loglevel error -y \
    -ss "$start" -i "$corpus/$src" -t "$dur" \
    -map 0:v:0 -vf "$fit" -crf 28 "${enc[@]}" "$out/$dest"
}

# 1. Indexed clips (four distinct corpus groups, tier A, CC-BY / CC0).
cut "moviepy/big_buck_bunny_0_30.webm"           10.0 10.0 "big-buck-bunny.mp4"
cut "mdn/tears-of-steel-battle-clip-medium.webm" 30.0 10.0 "tears-of-steel.mp4"
cut "sports/basketball.mp4"                       0.0  7.0 "basketball.mp4"
cut "mdn/friday.mp4"                              0.0  6.0 "his-girl-friday.mp4"

# 2. Repost: big-buck-bunny.mp4 seconds [2.0, 6.0), cut from the sample itself (second-generation
#    copy), downscaled to 240p, contrast/saturation raised, re-encoded at CRF 32.
"$ffmpeg" -nostdin -hide_banner -loglevel error -y \
  -ss 2.0 -i "$out/big-buck-bunny.mp4" -t 4.0 \
  -map 0:v:0 -vf "scale=-2:240,setsar=1,eq=contrast=1.1:saturation=1.2" -crf 32 "${enc[@]}" \
  "$out/repost-big-buck-bunny.mp4"

# 3. Unrelated clip (not indexed; its own corpus group) for the "no match" demo.
cut "mdn/flower.mp4" 0.0 5.0 "unrelated.mp4"

# 4. Test fixture (never indexed): a woman before a plain, softly lit wall, cropped
#    to 80 % and captioned meme-style (bench/accuracy's crop80_text edit). The wall's
#    shading fits a band of the picture's middle enlarged and blurred as if it were
#    blurred fill; tests/test_padding.py holds that it is not taken for fill.
font="$(fc-match -f '%{file}' 'DejaVu Sans:bold')"
text="fontcolor=white:fontsize=24:borderw=3:bordercolor=black:x=(w-tw)/2"
"$ffmpeg" -nostdin -hide_banner -loglevel error -y \
  -i "$corpus/intel-gif/head-pose-face-detection-female.gif" -map 0:v:0 \
  -vf "crop=384:216,drawtext=fontfile=$font:text=WHEN THE FOOTAGE:$text:y=h*0.03,drawtext=fontfile=$font:text=IS NOT WHAT IT SEEMS:$text:y=h*0.97-th,setsar=1" \
  -crf 28 "${enc[@]}" "$out/plain-wall-meme.mp4"

# 5. Test fixture: fast motion (vegetables slide along a conveyor, 15 fps). Between
#    two samples 0.125 s apart the picture changes by more than the match radius;
#    tests/test_end_to_end.py holds that its sped-up, slowed and reversed copies are
#    found all the same.
cut "intel-gif/fruit-and-vegetable-detection.gif" 0.0 7.0 "fast-conveyor.mp4"

# 6. Test fixtures: a signer (2.3 s, the corpus file unchanged) and bench/accuracy's
#    news repost of it, made by that benchmark's own command (combo_news): 1.38 s from
#    0.46 s, cropped to 90 %, shown at half size in a black frame under a red news
#    ticker, CRF 28. Its frame hashes meet the signer too weakly to list it and its
#    keypoints meet 3 frames, one short; tests/test_end_to_end.py holds that the two
#    agreeing find it. Not the samples' encoder options: the benchmark's, so that the
#    bytes are the benchmark's variant (byte-identical with Debian ffmpeg 5.1.9).
cp "$corpus/intel-asl/asl-night.mkv" "$out/asl-night.mkv"
"$ffmpeg" -nostdin -hide_banner -loglevel error -y -ss 0.46 -t 1.38 -i "$corpus/intel-asl/asl-night.mkv" \
  -map 0:v:0 -vf "crop=576:432,scale=288:216,pad=336:264:24:24:color=black,drawbox=x=0:y=ih*0.88:w=iw:h=ih*0.12:color=0xC00000@0.95:t=fill,drawtext=fontfile=$font:text=BREAKING NEWS - unverified video circulating:fontcolor=white:fontsize=18:borderw=0:bordercolor=black:x=w-t*80:y=h*0.94-th/2,scale=trunc(iw/2)*2:trunc(ih/2)*2" \
  -an -sn -dn -c:v libx264 -preset superfast -pix_fmt yuv420p -crf 28 "$out/asl-night-news-repost.mp4"

# 7. Test fixtures: two more clips of the same signer at the same desk, other words
#    (2.0 s and 2.4 s, the corpus files unchanged). Each starts from the rest pose the
#    other does; tests/test_end_to_end.py holds that neither is listed for the other.
cp "$corpus/intel-asl/asl-learn.mkv" "$out/asl-learn.mkv"
cp "$corpus/intel-asl/asl-school.mkv" "$out/asl-school.mkv"

echo "samples written to $out"
