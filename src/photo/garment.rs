//! Finding the garment in a photo, robust to what real photos add: the picture is averaged down to at
//! most `WORK_SIDE` pixels a side (which also averages sensor noise away); the background is a plane
//! fitted to the border ring with outliers left out, so an off-white table, a lighting gradient or a
//! garment touching one edge do not move it; the garment mask is taken after a 3x3 median filter (which
//! removes isolated specks and salt noise) above a threshold set by the measured noise; and only
//! connected components of a real fraction of the largest one count, so a speck of dust cannot stretch
//! the crop box, and what lies beyond a few pixels of them is background. Tested by tests/photos.rs.

use image::DynamicImage;

/// The longest side of the working picture: ample for a 28x28 result.
pub const WORK_SIDE: u32 = 640;
/// Rows converted to grey at a time, so a large picture is never copied whole.
const STRIP_ROWS: u32 = 64;
/// Pixels at least this far above the background count as garment: low enough to keep faint fabric,
/// high enough to ignore JPEG noise on the background.
pub const INK_THRESHOLD: f32 = 32.0;
/// The threshold is also at least this many standard deviations of the background's noise.
const NOISE_SIGMAS: f32 = 4.0;
/// Components smaller than this fraction of the largest are specks, not parts of the garment.
const KEEP_FRACTION: f64 = 0.02;
/// Border pixels further than this from the fitted background (in grey levels, or 3 noise deviations
/// when more) are not background (a garment touching the edge, a speck).
const BACKGROUND_TOLERANCE: f32 = 16.0;

/// A grey picture, row-major, values in 0-255 (float).
pub struct Grey {
    pub w: u32,
    pub h: u32,
    pub v: Vec<f32>,
}

impl Grey {
    fn at(&self, x: u32, y: u32) -> f32 {
        self.v[(y * self.w + x) as usize]
    }
}

/// Luma (Rec. 601) with transparent parts composited onto white as a viewer shows them, averaged over
/// k x k blocks so that the longest side is at most `WORK_SIDE`.
pub fn working_grey(image: &DynamicImage) -> Grey {
    let (w0, h0) = (image.width(), image.height());
    let k = w0.max(h0).div_ceil(WORK_SIDE).max(1);
    let (w, h) = (w0.div_ceil(k), h0.div_ceil(k));
    let mut sum = vec![0.0f64; (w * h) as usize];
    let mut count = vec![0u32; (w * h) as usize];
    let strip = STRIP_ROWS.div_ceil(k) * k;
    for y0 in (0..h0).step_by(strip as usize) {
        let rows = strip.min(h0 - y0);
        let part = image.crop_imm(0, y0, w0, rows).to_rgba8();
        for (x, y, p) in part.enumerate_pixels() {
            let [r, g, b, a] = p.0.map(|c| c as f32);
            let luma = 0.299 * r + 0.587 * g + 0.114 * b;
            let alpha = a / 255.0;
            let i = (((y0 + y) / k) * w + x / k) as usize;
            sum[i] += (luma * alpha + 255.0 * (1.0 - alpha)) as f64;
            count[i] += 1;
        }
    }
    let v = sum
        .iter()
        .zip(&count)
        .map(|(&s, &c)| (s / c as f64) as f32)
        .collect();
    Grey { w, h, v }
}

/// The border ring a few percent wide: `(x, y)` of each of its pixels.
pub fn ring(w: u32, h: u32) -> Vec<(u32, u32)> {
    let r = (w.min(h) / 25).max(1);
    (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| x < r || y < r || x + r >= w || y + r >= h)
        .collect()
}

/// The median of `values` (sorted in place); 0 when empty.
pub fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    values[values.len() / 2]
}

/// The background as a plane `a + bx x + by y`, fitted to the ring's pixels that lie near it, and the
/// standard deviation of their noise.
#[derive(Clone, Copy, Debug)]
pub struct Background {
    a: f32,
    bx: f32,
    by: f32,
    pub noise: f32,
}

impl Background {
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.a + self.bx * x as f32 + self.by * y as f32
    }

    /// Starts from the ring's median and refits twice on the pixels within the tolerance of the last fit.
    pub fn fit(grey: &Grey, ring: &[(u32, u32)]) -> Background {
        let mut values: Vec<f32> = ring.iter().map(|&(x, y)| grey.at(x, y)).collect();
        let mut bg = Background {
            a: median(&mut values),
            bx: 0.0,
            by: 0.0,
            noise: 0.0,
        };
        for _ in 0..3 {
            let mut residuals: Vec<f32> = ring
                .iter()
                .map(|&(x, y)| (grey.at(x, y) - bg.at(x, y)).abs())
                .collect();
            let noise = 1.4826 * median(&mut residuals);
            let tolerance = BACKGROUND_TOLERANCE.max(3.0 * noise);
            let inliers: Vec<(u32, u32)> = ring
                .iter()
                .copied()
                .filter(|&(x, y)| (grey.at(x, y) - bg.at(x, y)).abs() <= tolerance)
                .collect();
            bg = Background {
                noise,
                ..plane(grey, &inliers).unwrap_or(bg)
            };
        }
        bg
    }
}

/// Least-squares plane through the pixels `at`; None when they do not span both directions.
fn plane(grey: &Grey, at: &[(u32, u32)]) -> Option<Background> {
    let n = at.len() as f64;
    if n < 3.0 {
        return None;
    }
    let mean = |f: &dyn Fn(u32, u32) -> f64| at.iter().map(|&(x, y)| f(x, y)).sum::<f64>() / n;
    let (mx, my) = (mean(&|x, _| x as f64), mean(&|_, y| y as f64));
    let mv = mean(&|x, y| grey.at(x, y) as f64);
    let (mut sxx, mut syy, mut sxy, mut sxv, mut syv) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(x, y) in at {
        let (dx, dy, dv) = (x as f64 - mx, y as f64 - my, grey.at(x, y) as f64 - mv);
        sxx += dx * dx;
        syy += dy * dy;
        sxy += dx * dy;
        sxv += dx * dv;
        syv += dy * dv;
    }
    let det = sxx * syy - sxy * sxy;
    if det.abs() < 1e-9 * (sxx * syy).max(1.0) {
        return None;
    }
    let bx = (sxv * syy - syv * sxy) / det;
    let by = (syv * sxx - sxv * sxy) / det;
    Some(Background {
        a: (mv - bx * mx - by * my) as f32,
        bx: bx as f32,
        by: by as f32,
        noise: 0.0,
    })
}

/// The threshold above which a (background-removed) level is garment, given the noise in those units.
pub fn threshold(noise: f32) -> f32 {
    INK_THRESHOLD.max(NOISE_SIGMAS * noise)
}

/// Where the garment is in a picture.
pub struct Garment {
    /// The smallest rectangle `(x, y, w, h)` holding it.
    pub bbox: (u32, u32, u32, u32),
    /// `(h, w)`: pixels near its parts; anything else (dust beside it) is background.
    pub near: Vec<bool>,
}

/// The garment in `level` (background 0, garment up to 255): the connected components of the
/// median-filtered mask above `t` that are at least `KEEP_FRACTION` of the largest one, and the pixels
/// above `t` just around them. None when nothing stands out.
pub fn find(level: &Grey, t: f32) -> Option<Garment> {
    let (w, h) = (level.w, level.h);
    let mask: Vec<bool> = median3(level).iter().map(|&v| v > t).collect();
    let (labels, components) = components(&mask, w, h);
    let largest = components.iter().map(|c| c.area).max()?;
    let kept: Vec<bool> = components
        .iter()
        .map(|c| c.area as f64 >= KEEP_FRACTION * largest as f64)
        .collect();
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (c, _) in components.iter().zip(&kept).filter(|(_, k)| **k) {
        (x0, y0, x1, y1) = (x0.min(c.x0), y0.min(c.y0), x1.max(c.x1), y1.max(c.y1));
    }
    let keep: Vec<bool> = labels
        .iter()
        .map(|&l| l != 0 && kept[l as usize - 1])
        .collect();
    let near = dilate(&keep, w, h, (w.min(h) / 50).max(2));
    // The median filter trims a pixel off thin edges: take the edges back from the unfiltered pixels
    // just around the kept components.
    let (ex0, ey0) = (x0.saturating_sub(2), y0.saturating_sub(2));
    let (ex1, ey1) = ((x1 + 2).min(w - 1), (y1 + 2).min(h - 1));
    for y in ey0..=ey1 {
        for x in ex0..=ex1 {
            if level.at(x, y) > t {
                (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
            }
        }
    }
    Some(Garment {
        bbox: (x0, y0, x1 - x0 + 1, y1 - y0 + 1),
        near,
    })
}

/// `mask` grown by `r` pixels in every direction (a square structuring element, done as two passes).
fn dilate(mask: &[bool], w: u32, h: u32, r: u32) -> Vec<bool> {
    let (w, h, r) = (w as usize, h as usize, r as usize);
    let mut rows = vec![false; mask.len()];
    for y in 0..h {
        let line = &mask[y * w..(y + 1) * w];
        for x in 0..w {
            rows[y * w + x] = line[x.saturating_sub(r)..(x + r + 1).min(w)].contains(&true);
        }
    }
    let mut out = vec![false; mask.len()];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = (y.saturating_sub(r)..(y + r + 1).min(h)).any(|yy| rows[yy * w + x]);
        }
    }
    out
}

/// The 3x3 median of every pixel (edges repeat the border).
fn median3(g: &Grey) -> Vec<f32> {
    let (w, h) = (g.w as i64, g.h as i64);
    let mut out = vec![0.0; g.v.len()];
    let mut window = [0.0f32; 9];
    for y in 0..h {
        for x in 0..w {
            let mut k = 0;
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (sx, sy) = ((x + dx).clamp(0, w - 1), (y + dy).clamp(0, h - 1));
                    window[k] = g.v[(sy * w + sx) as usize];
                    k += 1;
                }
            }
            window.sort_by(f32::total_cmp);
            out[(y * w + x) as usize] = window[4];
        }
    }
    out
}

/// One 8-connected component of a mask: its pixel count and bounding box.
struct Component {
    area: u64,
    x0: u32,
    y0: u32,
    x1: u32,
    y1: u32,
}

/// The 8-connected components of `mask`, and each pixel's component (1-based; 0 off the mask).
fn components(mask: &[bool], w: u32, h: u32) -> (Vec<u32>, Vec<Component>) {
    let mut label = vec![0u32; mask.len()];
    let mut found = Vec::new();
    let mut stack = Vec::new();
    for start in 0..mask.len() {
        if !mask[start] || label[start] != 0 {
            continue;
        }
        let id = found.len() as u32 + 1;
        label[start] = id;
        stack.push(start);
        let (sx, sy) = ((start as u32) % w, (start as u32) / w);
        let mut c = Component {
            area: 0,
            x0: sx,
            y0: sy,
            x1: sx,
            y1: sy,
        };
        while let Some(i) = stack.pop() {
            let (x, y) = ((i as u32) % w, (i as u32) / w);
            c.area += 1;
            (c.x0, c.y0, c.x1, c.y1) = (c.x0.min(x), c.y0.min(y), c.x1.max(x), c.y1.max(y));
            for ny in y.saturating_sub(1)..=(y + 1).min(h - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(w - 1) {
                    let j = (ny * w + nx) as usize;
                    if mask[j] && label[j] == 0 {
                        label[j] = id;
                        stack.push(j);
                    }
                }
            }
        }
        found.push(c);
    }
    (label, found)
}
