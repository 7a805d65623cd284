//! Long tables drawn a window at a time: only the rows near the screen are in the DOM, with a
//! spacer above and below standing in for the rest, so an update on a chart of thousands of
//! results renders, lays out and paints a screenful of rows instead of every row.
//!
//! Every line is still computed (the list is complete, however long the chart); only drawing is
//! windowed, and only for tables longer than [`DRAWN_WHOLE`] lines. Each line has a fixed height by kind, which the stylesheet gives its row
//! (`tr.line-*`), so where a line sits is known without measuring it. The window follows the
//! page's scrolling; the server and the first client render draw the same first window, so
//! hydration matches.

use std::{hash::Hash, sync::Arc};

use leptos::prelude::*;

/// Tables of at most this many lines are drawn whole: a screen's worth of work is small, and
/// the browser's find-in-page and a screen reader's row count then see every row.
const DRAWN_WHOLE: usize = 400;
/// How far beyond the screen rows are kept drawn, above and below (px).
const OVERSCAN: f64 = 900.0;
/// The screen height assumed until the browser tells (and on the server).
const FIRST_SCREEN: f64 = 1000.0;

/// A line of a windowed table.
pub trait Line: Clone + Send + Sync + 'static {
    type Key: Clone + Eq + Hash + Send + Sync + 'static;
    fn key(&self) -> Self::Key;
    /// Its row's height in px, as the stylesheet draws it.
    fn height(&self) -> f64;
}

/// The lines and where each starts (px from the top of the table body).
struct Layout<L> {
    lines: Vec<L>,
    /// `tops[i]` is where line `i` starts; `tops[lines.len()]` is the whole height.
    tops: Vec<f64>,
}

impl<L: Line> Layout<L> {
    fn new(lines: Vec<L>) -> Self {
        let mut tops = Vec::with_capacity(lines.len() + 1);
        let mut at = 0.0;
        tops.push(at);
        for line in &lines {
            at += line.height();
            tops.push(at);
        }
        Self { lines, tops }
    }

    fn height(&self) -> f64 {
        self.tops.last().copied().unwrap_or_default()
    }

    /// The lines to draw for a screen showing `from..to` (px), as an index range: all of a short
    /// table, else those that cross it.
    fn range(&self, from: f64, to: f64) -> (usize, usize) {
        let count = self.lines.len();
        if count <= DRAWN_WHOLE {
            return (0, count);
        }
        // The first line that ends after `from`, the first line that starts at or after `to`.
        let start = self.tops[1..]
            .partition_point(|end| *end <= from)
            .min(count);
        let end = self.tops[..count]
            .partition_point(|top| *top < to)
            .max(start);
        (start, end)
    }
}

/// A `<tbody>` that draws the lines near the screen, keyed, in a table of `columns` columns.
pub fn windowed_body<L, V>(
    lines: impl Fn() -> Vec<L> + Send + Sync + 'static,
    columns: usize,
    render: impl Fn(L) -> V + Clone + Send + Sync + 'static,
) -> impl IntoView
where
    L: Line,
    V: IntoView + 'static,
{
    let layout = Memo::new_with_compare(move |_| Arc::new(Layout::new(lines())), |_, _| true);
    // The body's top relative to the screen, and the screen's height (px).
    let screen = RwSignal::new((0.0_f64, FIRST_SCREEN));
    let body = NodeRef::<leptos::html::Tbody>::new();
    follow_scrolling(body, screen);
    let range = Memo::new(move |_| {
        let (top, height) = screen.get();
        layout.with(|layout| layout.range(-top - OVERSCAN, -top + height + OVERSCAN))
    });
    let visible = move || {
        let (start, end) = range.get();
        layout.with(|layout| layout.lines[start..end].to_vec())
    };
    let above = move || {
        let (start, _) = range.get();
        layout.with(|layout| layout.tops[start])
    };
    let below = move || {
        let (_, end) = range.get();
        layout.with(|layout| layout.height() - layout.tops[end])
    };
    let spacer = move |height: Signal<f64>| {
        view! {
            <tr class="spacer" aria-hidden="true">
                <td colspan=columns style:height=move || format!("{}px", height.get())></td>
            </tr>
        }
    };
    view! {
        <tbody node_ref=body>
            {spacer(Signal::derive(above))}
            <For each=visible key=Line::key children=move |line| render(line) />
            {spacer(Signal::derive(below))}
        </tbody>
    }
}

/// Keeps `screen` at the body's position on screen, once per frame while the page scrolls or is
/// resized, and once after the body is drawn.
fn follow_scrolling(body: NodeRef<leptos::html::Tbody>, screen: RwSignal<(f64, f64)>) {
    #[cfg(feature = "hydrate")]
    {
        use std::{cell::Cell, rc::Rc};

        let measure = move || {
            let Some(element) = body.get_untracked() else {
                return;
            };
            let top = element.get_bounding_client_rect().top();
            let height = window()
                .inner_height()
                .ok()
                .and_then(|h| h.as_f64())
                .unwrap_or(FIRST_SCREEN);
            if screen.get_untracked() != (top, height) {
                screen.set((top, height));
            }
        };
        let waiting = Rc::new(Cell::new(false));
        let schedule = {
            let waiting = waiting.clone();
            move || {
                if waiting.replace(true) {
                    return;
                }
                let waiting = waiting.clone();
                request_animation_frame(move || {
                    waiting.set(false);
                    measure();
                });
            }
        };
        let on_scroll = window_event_listener_untyped("scroll", {
            let schedule = schedule.clone();
            move |_| schedule()
        });
        let on_resize = window_event_listener_untyped("resize", {
            let schedule = schedule.clone();
            move |_| schedule()
        });
        Effect::new(move |_| {
            if body.get().is_some() {
                schedule();
            }
        });
        on_cleanup(move || {
            on_scroll.remove();
            on_resize.remove();
        });
    }
    #[cfg(not(feature = "hydrate"))]
    {
        let _ = (body, screen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Row(u32, f64);

    impl Line for Row {
        type Key = u32;
        fn key(&self) -> u32 {
            self.0
        }
        fn height(&self) -> f64 {
            self.1
        }
    }

    /// The oracle: every line whose box `[top, top + height)` meets `[from, to)`.
    fn crossing(rows: &[Row], from: f64, to: f64) -> Vec<u32> {
        let mut top = 0.0;
        let mut out = Vec::new();
        for row in rows {
            let bottom = top + row.1;
            if bottom > from && top < to {
                out.push(row.0);
            }
            top = bottom;
        }
        out
    }

    #[test]
    fn the_window_holds_exactly_the_lines_that_cross_it() {
        let heights = [44.0, 34.0, 36.0, 36.0, 36.0, 34.0, 36.0, 44.0, 34.0, 36.0];
        for count in [0, 1, 2, 7, 400, 401, 1000] {
            let rows: Vec<Row> = (0..count)
                .map(|i| Row(i as u32, heights[i % heights.len()]))
                .collect();
            let layout = Layout::new(rows.clone());
            let total = layout.height();
            for from in [
                -2000.0,
                -1.0,
                0.0,
                1.0,
                43.9,
                44.0,
                44.1,
                500.0,
                total - 1.0,
                total,
                total + 5.0,
            ] {
                for span in [0.5, 36.0, 720.0, 5000.0] {
                    let (start, end) = layout.range(from, from + span);
                    let drawn: Vec<u32> = layout.lines[start..end].iter().map(|r| r.0).collect();
                    let expected = if count <= DRAWN_WHOLE {
                        (0..count as u32).collect()
                    } else {
                        crossing(&rows, from, from + span)
                    };
                    assert_eq!(drawn, expected, "{count} rows, {from}+{span}");
                }
            }
        }
    }
}
