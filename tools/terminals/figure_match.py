#!/usr/bin/env python3
"""Finds a figure in a terminal's screenshot and says how faithfully it is drawn.

    figure_match.py SHOT.png FIGURE.png
    figure_match.py --display :77 --shot OUT.png [--until 0.9 [--min-detail 0.5]]
                    [--changed-from REF.png] [--timeout 20] FIGURE.png

Prints one JSON object:

    {"score": .., "detail": .., "x": .., "y": .., "w": .., "h": .., "free_score": ..,
     "stretch": .., "free_detail": .., "shot_time": .., "found_time": ..}

- score: cv2.matchTemplate (TM_CCOEFF_NORMED) of the grayscale figure, resized over a range of
  scales (and a little of aspect ratio, since a terminal draws in whole cells), against the
  grayscale screenshot; the best place and size are x, y, w, h in screenshot pixels. A figure
  drawn whole scores near 1 (sixel >= 0.99, half blocks ~0.98); a grid of boxes, half a figure
  or no figure scores far lower.
- stretch: the figure's height/width on screen over its own, from a second search that lets the
  aspect ratio vary by ±30% (free_score is that search's score): 1 for a figure drawn in shape,
  1.2 for one stretched 20% taller; free_detail is the detail there.
- detail: the correlation of the band-pass filtered matched region (a difference of Gaussian
  blurs, sigma 1 and 3 pixels: structures of 2 to 6 pixels) with the band-passed figure at that
  size: 0.90 to 1.0 where the terminal draws the figure at its own pixel resolution (sixel,
  kitty), 0.55 or less for Unicode half blocks (one colour pair per half cell: the fine detail
  is gone), lower still the larger the figure is drawn.

With --display the script takes the screenshots itself (`import -window root`, ImageMagick) until
the score reaches --until (and the detail --min-detail), or until the screen differs from
--changed-from, or --timeout seconds pass; OUT.png keeps the last screenshot, and the JSON adds
shot_time (when it was taken, seconds since the epoch, so the caller can time the first figure),
found_time (when a screenshot first scored --found, default 0.9, or null), waited (seconds) and
reached (whether the condition was met before the time-out). With --settle S, a wait for --until
ends S seconds after the figure was found, met or not.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np

# The screenshot is searched at this width first (all scales), then at full size near the best.
COARSE_WIDTH = 480
# The band the detail is compared in: the image blurred by the first sigma minus the image blurred
# by the second (structures of about 2 to 6 pixels). Unicode half blocks (cells of about 6×13
# pixels, two colours each) cannot draw it; an image protocol draws it whatever resampling the
# program chose, which only changes the finest, single-pixel band.
DETAIL_BAND = (1.0, 3.0)
# Windows whose gray levels vary less than this (standard deviation) are not matched.
FLAT = 2.0


def gray(path):
    image = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if image is None:
        raise SystemExit(f"cannot read {path}")
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.shape[2] == 4:
        # Drawn over black, as a terminal image over the dark background; the alpha goes.
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        image = (image[:, :, :3].astype(np.float32) * alpha).astype(np.uint8)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)


def resize(image, w, h):
    shrink = w < image.shape[1] or h < image.shape[0]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def window_std(image, w, h):
    """The standard deviation of every w×h window of `image`, shaped like matchTemplate's result."""
    total, squares = cv2.integral2(image.astype(np.float64))
    n = float(w * h)

    def window_sums(table):
        return table[h:, w:] - table[:-h, w:] - table[h:, :-w] + table[:-h, :-w]

    mean = window_sums(total) / n
    return np.sqrt(np.maximum(window_sums(squares) / n - mean * mean, 0.0))


def match(shot, figure, w, h, roi=None):
    """Best (score, x, y) of `figure` resized to w×h in `shot` (or in shot's roi x0, y0, x1, y1)."""
    x0, y0, x1, y1 = roi if roi else (0, 0, shot.shape[1], shot.shape[0])
    area = shot[y0:y1, x0:x1]
    if w < 8 or h < 8 or w > area.shape[1] or h > area.shape[0]:
        return (-1.0, 0, 0)
    result = cv2.matchTemplate(area, resize(figure, w, h), cv2.TM_CCOEFF_NORMED)
    result = np.nan_to_num(result, nan=-1.0, posinf=-1.0, neginf=-1.0)
    # A flat window (empty screen) has no variance: OpenCV may call it a perfect match.
    result[window_std(area, w, h) < FLAT] = -1.0
    _, best, _, (x, y) = cv2.minMaxLoc(result)
    return (float(best), x0 + x, y0 + y)


def locate(shot, figure):
    """The best match (score, x, y, w, h) over scales, coarse then fine, with the figure's aspect
    ratio kept (within ±5%); and the best with any aspect ratio within ±30%."""
    fh, fw = figure.shape
    sh, sw = shot.shape
    factor = min(1.0, COARSE_WIDTH / sw)
    small = resize(shot, max(1, round(sw * factor)), max(1, round(sh * factor)))
    # The figure once at about the largest size it is matched at, so each resize below is cheap.
    coarse_figure = pre_shrink(figure, sh * factor)
    # Coarse: heights from 6% to 100% of the screen, 3% apart, at the reduced size.
    best = (-1.0, 0, 0, 0, 0)
    height = 0.06 * sh
    while height <= sh:
        w, h = round(height * fw / fh), round(height)
        score, x, y = match(small, coarse_figure, round(w * factor), round(h * factor))
        if score > best[0]:
            best = (score, round(x / factor), round(y / factor), w, h)
        height *= 1.03
    # Fine, at full size near the coarse place: the width, then the height, each within ±4%
    # (a terminal draws whole cells, so the aspect ratio may differ a little), then within ±1%.
    fine_figure = pre_shrink(figure, best[4] * 1.4)
    margin = round(2 / factor) + 2
    kept = exact(shot, figure, refine(shot, fine_figure, best, (0.04, 0.01), margin))
    # Free: the aspect ratio within ±30%, to tell how far a figure drawn out of shape is stretched.
    free = refine(shot, fine_figure, kept, (0.3, 0.08, 0.02), margin)
    return kept, free


def exact(shot, figure, best):
    """`best` within ±2 pixels of its size, the figure resized once from its own pixels (the
    searches above resize a smaller copy): the size the detail is measured at."""
    sh, sw = shot.shape
    _, bx, by, bw, bh = best
    roi = (max(0, bx - 4), max(0, by - 4), min(sw, bx + bw + 8), min(sh, by + bh + 8))
    best = (-1.0, 0, 0, 0, 0)
    for w in range(bw - 2, bw + 3):
        for h in range(bh - 2, bh + 3):
            score, x, y = match(shot, figure, w, h, roi)
            if score > best[0]:
                best = (score, x, y, w, h)
    return best


def refine(shot, figure, best, spreads, margin):
    """`best` improved by trying widths, then heights, within each relative spread in turn."""
    sh, sw = shot.shape
    for spread in spreads:
        for axis in (0, 1):
            _, bx, by, bw, bh = best
            room = round(max(bw, bh) * spread) + margin
            roi = (
                max(0, bx - room),
                max(0, by - room),
                min(sw, bx + bw + 2 * room),
                min(sh, by + bh + 2 * room),
            )
            for i in range(-4, 5):
                size = [bw, bh]
                size[axis] = round(size[axis] * (1 + spread * i / 4))
                score, x, y = match(shot, figure, size[0], size[1], roi)
                if score > best[0]:
                    best = (score, x, y, size[0], size[1])
    return best


def pre_shrink(figure, height):
    """`figure` shrunk to `height` pixels high when it is taller (aspect ratio kept)."""
    fh, fw = figure.shape
    if fh <= height:
        return figure
    return resize(figure, max(1, round(fw * height / fh)), max(1, round(height)))


def band_pass(image):
    fine, coarse = DETAIL_BAND
    return cv2.GaussianBlur(image, (0, 0), fine) - cv2.GaussianBlur(image, (0, 0), coarse)


def detail(shot, figure, x, y, w, h):
    if w < 8 or h < 8:
        return 0.0
    region = band_pass(shot[y : y + h, x : x + w])
    source = band_pass(resize(figure, w, h))
    a, b = region - region.mean(), source - source.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def measure(shot_path, figure):
    shot = gray(shot_path)
    (score, x, y, w, h), free = locate(shot, figure)
    fh, fw = figure.shape
    _, free_x, free_y, free_w, free_h = free
    return {
        "score": round(score, 4),
        "detail": round(detail(shot, figure, x, y, w, h), 4),
        "x": x,
        "y": y,
        "w": w,
        "h": h,
        "free_score": round(free[0], 4),
        "stretch": round((free_h / max(free_w, 1)) / (fh / fw), 4),
        "free_detail": round(detail(shot, figure, free_x, free_y, free_w, free_h), 4),
    }


def differs(shot_path, reference_path):
    """Whether two screenshots differ in more than 0.2% of their pixels (by more than 24 levels)."""
    a = cv2.imread(shot_path, cv2.IMREAD_GRAYSCALE)
    b = cv2.imread(reference_path, cv2.IMREAD_GRAYSCALE)
    if a is None or b is None or a.shape != b.shape:
        return True
    changed = np.count_nonzero(cv2.absdiff(a, b) > 24)
    return bool(changed > 0.002 * a.size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="SHOT.png FIGURE.png, or FIGURE.png with --display")
    parser.add_argument("--display", help="take screenshots of this X display (with --shot)")
    parser.add_argument("--shot", help="where the screenshot goes (with --display)")
    parser.add_argument("--until", type=float, help="retake until the score reaches this")
    parser.add_argument("--min-detail", type=float, help="with --until: and the detail this")
    parser.add_argument("--changed-from", help="retake until the screen differs from this screenshot")
    parser.add_argument("--found", type=float, default=0.9, help="found_time: first score this high")
    parser.add_argument(
        "--settle", type=float, help="with --until: stop this many seconds after found_time"
    )
    parser.add_argument("--timeout", type=float, default=20.0, help="give up after this many seconds")
    args = parser.parse_args()

    if args.display is None:
        if len(args.paths) != 2:
            parser.error("give SHOT.png FIGURE.png")
        shot_path, figure_path = args.paths
        result = measure(shot_path, gray(figure_path))
        result["shot_time"] = None
        print(json.dumps(result))
        return

    if len(args.paths) != 1 or not args.shot:
        parser.error("with --display give --shot OUT.png and FIGURE.png")
    figure = gray(args.paths[0])
    started = time.time()
    deadline = started + args.timeout
    tmp = args.shot + ".part.png"
    result = None
    found_time = None
    while True:
        taken = time.time()
        grab = subprocess.run(
            ["import", "-display", args.display, "-window", "root", tmp],
            capture_output=True,
            text=True,
        )
        if grab.returncode == 0:
            os.replace(tmp, args.shot)
            if args.changed_from is not None:
                reached = differs(args.shot, args.changed_from)
                result = measure(args.shot, figure) if reached or taken >= deadline else None
            else:
                result = measure(args.shot, figure)
                reached = args.until is None or (
                    result["score"] >= args.until
                    and (args.min_detail is None or result["detail"] >= args.min_detail)
                )
            if result is not None and found_time is None and result["score"] >= args.found:
                found_time = taken
            if result is not None:
                result["shot_time"] = taken
                result["found_time"] = found_time
                result["waited"] = round(taken - started, 3)
                result["reached"] = reached
            if reached:
                break
        elif taken >= deadline:
            print(f"import failed: {grab.stderr.strip()}", file=sys.stderr)
            sys.exit(2)
        if taken >= deadline:
            break
        if args.settle is not None and found_time is not None and taken >= found_time + args.settle:
            break
        time.sleep(0.05)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
