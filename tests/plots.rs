//! Every figure, drawn from real data or from numbers chosen to expose a mistake: the PNG has the expected
//! size, is not blank, and at least one pixel check would catch a wrong figure (wrong colour map, bars
//! coloured for the wrong reason, a matrix drawn transposed, a falling loss drawn rising).

mod common;

use fmnist::data::{IMAGE_SIDE, NUM_CLASSES};
use fmnist::evaluate::Evaluation;
use fmnist::per_class::per_class;
use fmnist::plot::style::{OTHER_BAR, PixelMap, RIGHT, TEST_LINE, TRAIN_LINE, VAL_LINE, WRONG};
use fmnist::plot::{Figure, axes, confusion, history, mistakes, predictions, run_figures, samples};
use fmnist::train::{EpochRecord, Scores};

/// Fashion-MNIST's class names, which the figures label.
fn names() -> fmnist::data::ClassNames {
    fmnist::data::ClassNames::default()
}

fn assert_drawn(fig: &Figure, size: (u32, u32)) {
    assert_eq!((fig.width(), fig.height()), size, "figure size");
    assert!(
        fig.variance() > 100.0,
        "figure looks blank (variance {})",
        fig.variance()
    );
    let png = fig.png().unwrap();
    let decoded = image::load_from_memory(&png).unwrap();
    assert_eq!((decoded.width(), decoded.height()), size, "PNG size");
}

/// Probabilities with `top` at 0.6 and `second` at 0.3; the rest share 0.1.
fn probs(top: usize, second: usize) -> Vec<f32> {
    let mut p = vec![0.1 / 8.0; NUM_CLASSES];
    p[top] = 0.6;
    p[second] = 0.3;
    p
}

#[test]
fn single_image_is_viridis_block_by_block() {
    let ds = common::dataset();
    let img = ds.train.image(0);
    let fig = samples::single(img).unwrap();
    assert_drawn(&fig, samples::SINGLE_SIZE);
    let p = samples::SINGLE_IMAGE;
    let block = p.side as usize / IMAGE_SIDE;
    for (i, &v) in img.iter().enumerate() {
        let (r, c) = (i / IMAGE_SIDE, i % IMAGE_SIDE);
        let (x, y) = (
            p.x as usize + c * block + block / 2,
            p.y as usize + r * block + block / 2,
        );
        let want = PixelMap::Viridis.colour(v);
        assert_eq!(
            fig.pixel(x as u32, y as u32),
            [want.0, want.1, want.2],
            "pixel ({r}, {c}) = {v}"
        );
    }
}

#[test]
fn sample_grid_shows_the_first_images_in_order_in_binary() {
    let ds = common::dataset();
    let fig = samples::grid(&ds.train, 5, &names()).unwrap();
    assert_drawn(&fig, samples::grid_size(5));
    for i in 0..25 {
        let p = samples::grid_image(i, 5);
        let block = p.side as usize / IMAGE_SIDE;
        for (k, &v) in ds.train.image(i).iter().enumerate().step_by(7) {
            let (r, c) = (k / IMAGE_SIDE, k % IMAGE_SIDE);
            let (x, y) = (
                p.x as usize + c * block + block / 2,
                p.y as usize + r * block + block / 2,
            );
            let want = PixelMap::Binary.colour(v);
            assert_eq!(
                fig.pixel(x as u32, y as u32),
                [want.0, want.1, want.2],
                "image {i} pixel {k}"
            );
        }
    }
    // A grid that is not square of the split's size is refused, not drawn half empty.
    assert!(samples::grid(&ds.test.clone().truncated(3), 2, &names()).is_err());
}

#[test]
fn prediction_bars_are_red_when_wrong_and_blue_when_right() {
    let ds = common::dataset();
    let img = ds.test.image(0);
    let right = predictions::single(img, &probs(3, 5), 3, &names()).unwrap();
    assert_drawn(&right, predictions::SINGLE_SIZE);
    assert_eq!(right.count(WRONG), 0, "a right prediction has no red");
    assert!(
        right.count(RIGHT) > 300,
        "the true (= predicted) bar is blue"
    );
    let wrong = predictions::single(img, &probs(3, 5), 5, &names()).unwrap();
    assert!(
        wrong.count(WRONG) > 300,
        "the predicted bar is red when wrong"
    );
    assert!(wrong.count(RIGHT) > 100, "the true bar is blue");
    // The red bar is twice as tall as the blue one (0.6 vs 0.3).
    let ratio = wrong.count(WRONG) as f64 / wrong.count(RIGHT) as f64;
    assert!(
        (1.6..2.4).contains(&ratio),
        "red/blue bar area ratio {ratio}"
    );
    assert!(wrong.count(OTHER_BAR) > 0, "the other bars are grey");
    assert_eq!(
        predictions::caption_text(&probs(3, 5), Some(5), &names()),
        "Dress 60% (Sandal)"
    );
}

#[test]
fn prediction_grid_is_red_only_where_the_model_is_wrong() {
    let ds = common::dataset();
    let (_, fit) = common::quick_model(ds);
    let eval = &fit.final_eval;
    let images: Vec<&[u8]> = (0..15).map(|i| ds.test.image(i)).collect();
    let fig = predictions::grid(&images, &eval.probs, &eval.labels, 5, 3, &names()).unwrap();
    assert_drawn(&fig, predictions::grid_size(5, 3));
    let wrong = (0..15)
        .filter(|&i| eval.predicted(i) != eval.labels[i] as usize)
        .count();
    assert_eq!(
        fig.count(WRONG) > 0,
        wrong > 0,
        "{wrong} of the first 15 are wrong"
    );
    assert!(fig.count(RIGHT) > 0);
    // A grid larger than the predictions is an error, not a panic.
    assert!(predictions::grid(&images, &eval.probs, &eval.labels, 4, 4, &names()).is_err());
}

#[test]
fn named_chart_and_photo_figure_have_red_predicted_bar_and_names() {
    let p = probs(8, 0);
    let chart = predictions::chart(&p, None, &names()).unwrap();
    assert_drawn(&chart, predictions::CHART_SIZE);
    assert!(
        chart.count(WRONG) > 300,
        "unknown truth: the predicted bar is red"
    );
    assert_eq!(chart.count(RIGHT), 0, "no true class, no blue");
    // The turned class names put ink in the strip under the axis.
    let (w, h) = predictions::CHART_SIZE;
    let ink = (h - 60..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .filter(|&(x, y)| chart.pixel(x, y)[0] < 128)
        .count();
    assert!(ink > 200, "class names under the bars ({ink} dark pixels)");

    let ds = common::dataset();
    let photo = predictions::photo(ds.test.image(1), &p, "my-photo.jpg", &names()).unwrap();
    assert_drawn(&photo, predictions::PHOTO_SIZE);
    assert!(photo.count(WRONG) > 300);
    // The input is drawn in plain grey (black background): the model's own view.
    assert!(photo.count(plotters::style::RGBColor(0, 0, 0)) > 1000);
}

#[test]
fn history_draws_a_falling_loss_falling() {
    let history: Vec<EpochRecord> = (1..=6)
        .map(|e| {
            let t = e as f64;
            EpochRecord {
                epoch: e,
                loss: 1.0 / t,
                accuracy: 0.7 + 0.03 * t,
                val: Some(Scores {
                    loss: 0.45 + 0.03 * (t - 3.0).powi(2),
                    accuracy: 0.74 + 0.01 * t,
                }),
                // The test set evaluated every other epoch: each curve joins the epochs it has.
                test: (e % 2 == 0).then_some(Scores {
                    loss: 0.5 + 0.02 * (t - 3.0).powi(2),
                    accuracy: 0.75 + 0.01 * t,
                }),
                seconds: 1.0,
            }
        })
        .collect();
    let fig = history::figure(&history).unwrap();
    assert_drawn(&fig, history::SIZE);
    // Train-loss pixels in the left panel, below the legend strip.
    let pts: Vec<(u32, u32)> = (history::PANEL_TOP..fig.height())
        .flat_map(|y| (0..fig.width() / 2).map(move |x| (x, y)))
        .filter(|&(x, y)| fig.pixel(x, y) == [TRAIN_LINE.0, TRAIN_LINE.1, TRAIN_LINE.2])
        .collect();
    assert!(pts.len() > 100, "the train loss curve is drawn");
    let leftmost = pts.iter().min_by_key(|p| p.0).unwrap();
    let rightmost = pts.iter().max_by_key(|p| p.0).unwrap();
    assert!(
        leftmost.1 + 100 < rightmost.1,
        "loss 1.0 at epoch 1 is drawn well above 0.17 at epoch 6"
    );
    assert!(fig.count(TEST_LINE) > 100, "the test curves are drawn");
    assert!(fig.count(VAL_LINE) > 100, "the validation curves are drawn");
    // Without validation or test scores only the train curves are drawn.
    let train_only: Vec<EpochRecord> = history
        .iter()
        .map(|r| EpochRecord {
            val: None,
            test: None,
            ..r.clone()
        })
        .collect();
    let fig = history::figure(&train_only).unwrap();
    assert!(fig.count(TRAIN_LINE) > 100);
    assert_eq!(fig.count(TEST_LINE) + fig.count(VAL_LINE), 0);
    assert!(history::figure(&[]).is_err());
}

#[test]
fn confusion_matrix_has_true_rows_and_predicted_columns() {
    let mut counts = [[0u32; NUM_CLASSES]; NUM_CLASSES];
    for (i, row) in counts.iter_mut().enumerate() {
        row[i] = 100;
    }
    counts[0][1] = 500; // many T-shirts taken for trousers, no trouser taken for a T-shirt
    let fig = confusion::figure(&counts, &names()).unwrap();
    assert_drawn(&fig, confusion::SIZE);
    let corner = |t: usize, p: usize| {
        let (x0, y0, _, _) = confusion::cell(t, p);
        fig.pixel(x0 as u32 + 3, y0 as u32 + 3)
    };
    let shade = |n| {
        let c = confusion::shade(n, 500);
        [c.0, c.1, c.2]
    };
    assert_eq!(
        corner(0, 1),
        shade(500),
        "row 0 (true T-shirt), column 1 (predicted Trouser) is darkest"
    );
    assert_eq!(corner(1, 0), shade(0));
    assert_eq!(corner(4, 4), shade(100));
}

#[test]
fn confusion_matrix_sums_to_the_test_set_and_its_diagonal_is_the_accuracy() {
    let ds = common::dataset();
    let (_, fit) = common::quick_model(ds);
    let eval = &fit.final_eval;
    let m = eval.confusion();
    let total: u32 = m.iter().flatten().sum();
    assert_eq!(total, 10_000);
    let diagonal: u32 = (0..NUM_CLASSES).map(|i| m[i][i]).sum();
    assert!(
        (diagonal as f64 / 10_000.0 - eval.accuracy).abs() < 1e-12,
        "{diagonal} vs {}",
        eval.accuracy
    );
    let rows = per_class(&m);
    assert_eq!(rows.iter().map(|r| r.correct).sum::<u32>(), diagonal);
    for r in &rows {
        assert_eq!(
            r.total, 1000,
            "Fashion-MNIST's test set has 1000 of each class"
        );
        if let Some((c, n)) = r.confused_with {
            assert_ne!(c, r.class);
            assert_eq!(
                n,
                (0..NUM_CLASSES)
                    .filter(|&p| p != r.class)
                    .map(|p| m[r.class][p])
                    .max()
                    .unwrap()
            );
        }
    }
    assert_drawn(&confusion::figure(&m, &names()).unwrap(), confusion::SIZE);
}

#[test]
fn mistakes_are_the_most_confident_wrong_predictions() {
    let ds = common::dataset();
    let (_, fit) = common::quick_model(ds);
    let eval = &fit.final_eval;
    let list = mistakes::most_confident(eval, 24);
    assert_eq!(list.len(), 24);
    for w in list.windows(2) {
        assert!(w[0].confidence >= w[1].confidence);
    }
    let best_wrong = (0..eval.len())
        .filter(|&i| eval.predicted(i) != eval.labels[i] as usize)
        .map(|i| eval.probs_of(i)[eval.predicted(i)])
        .fold(0.0f32, f32::max);
    assert_eq!(list[0].confidence, best_wrong);
    for m in &list {
        assert_ne!(m.predicted, m.truth);
        assert_eq!(m.truth, eval.labels[m.index] as usize);
    }
    let fig = mistakes::figure(&list, &ds.test, &names()).unwrap();
    assert_drawn(&fig, mistakes::size(24));
}

#[test]
fn mistakes_of_a_perfect_model_is_an_empty_figure_not_an_error() {
    let eval = Evaluation {
        loss: 0.0,
        accuracy: 1.0,
        probs: probs(2, 0),
        labels: vec![2],
    };
    assert!(mistakes::most_confident(&eval, 24).is_empty());
    let ds = common::dataset();
    assert!(mistakes::figure(&[], &ds.test, &names()).is_ok());
}

#[test]
fn run_figures_are_written_as_pngs_without_temporary_files() {
    let ds = common::dataset();
    let (_, fit) = common::quick_model(ds);
    let dir = tempfile::tempdir().unwrap();
    let paths = run_figures::write(
        dir.path(),
        &fit.history,
        &fit.final_eval,
        &ds.test,
        &names(),
    )
    .unwrap();
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "history.png",
            "confusion.png",
            "predictions.png",
            "mistakes.png"
        ]
    );
    for p in &paths {
        let img = image::open(p).unwrap();
        assert!(img.width() > 100 && img.height() > 100);
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn nice_ticks_are_round_and_inside_the_range() {
    assert_eq!(
        axes::nice_ticks(0.0, 1.0, 6),
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    );
    let t = axes::nice_ticks(0.33, 0.51, 8);
    assert!(t.len() >= 2 && t.len() <= 8, "{t:?}");
    assert!(t.iter().all(|v| (0.33..=0.51).contains(v)), "{t:?}");
    assert_eq!(
        axes::nice_ticks(1.0, 10.0, 12),
        (1..=10).map(f64::from).collect::<Vec<_>>()
    );
    assert_eq!(axes::nice_ticks(1.0, 1.0, 12), [1.0]);
}
