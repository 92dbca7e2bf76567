//! A uniform grid over the battlefield for nearest-enemy queries: rebuilt every step by a
//! counting sort of the units that can be targeted, searched ring by ring outward from the
//! asking unit. Never an all-pairs scan.

use rapier2d::math::Vector;

pub struct Grid {
    /// Side of a square cell, metres.
    cell: f32,
    inv_cell: f32,
    /// World position of the grid's lower corner.
    origin: Vector,
    cols: i32,
    rows: i32,
    /// `starts[c]..starts[c + 1]` indexes `items` for cell `c`.
    starts: Vec<u32>,
    /// Unit indices, grouped by cell.
    items: Vec<u32>,
    /// Next free slot of each cell while filling.
    next: Vec<u32>,
}

impl Grid {
    /// A grid of `cell`-sized squares covering `min..max`. Positions outside count as in the
    /// nearest border cell.
    pub fn new(min: Vector, max: Vector, cell: f32) -> Grid {
        let cell = cell.max(0.5);
        let cols = (((max.x - min.x) / cell).ceil() as i32).clamp(1, 4_096);
        let rows = (((max.y - min.y) / cell).ceil() as i32).clamp(1, 4_096);
        let cells = (cols * rows) as usize;
        Grid {
            cell,
            inv_cell: 1.0 / cell,
            origin: min,
            cols,
            rows,
            starts: vec![0; cells + 1],
            items: Vec::new(),
            next: vec![0; cells],
        }
    }

    fn coords(&self, p: Vector) -> (i32, i32) {
        // Truncation equals flooring here: negative values clamp to 0 either way.
        let x = ((p.x - self.origin.x) * self.inv_cell) as i32;
        let y = ((p.y - self.origin.y) * self.inv_cell) as i32;
        (x.clamp(0, self.cols - 1), y.clamp(0, self.rows - 1))
    }

    /// The cell a position falls in.
    pub fn cell_of(&self, p: Vector) -> u32 {
        let (x, y) = self.coords(p);
        (y * self.cols + x) as u32
    }

    /// Replaces the grid's contents with `entries` of (cell from [`Grid::cell_of`], unit).
    /// Within a cell, units keep the order of `entries`.
    pub fn fill(&mut self, entries: &[(u32, u32)]) {
        self.starts.fill(0);
        for &(cell, _) in entries {
            self.starts[cell as usize + 1] += 1;
        }
        for c in 1..self.starts.len() {
            self.starts[c] += self.starts[c - 1];
        }
        self.items.clear();
        self.items.resize(entries.len(), 0);
        self.next
            .copy_from_slice(&self.starts[..self.starts.len() - 1]);
        for &(cell, unit) in entries {
            let slot = &mut self.next[cell as usize];
            self.items[*slot as usize] = unit;
            *slot += 1;
        }
    }

    /// Replaces the grid's contents with `units` (index and position).
    pub fn rebuild(&mut self, units: impl Iterator<Item = (u32, Vector)>) {
        let entries: Vec<(u32, u32)> = units.map(|(unit, p)| (self.cell_of(p), unit)).collect();
        self.fill(&entries);
    }

    fn cell(&self, x: i32, y: i32) -> &[u32] {
        let c = (y * self.cols + x) as usize;
        &self.items[self.starts[c] as usize..self.starts[c + 1] as usize]
    }

    /// The unit nearest to `p` within `radius`, by the distance between centres; ties go to
    /// the lower unit index. `positions` maps unit indices to positions.
    pub fn nearest(&self, p: Vector, radius: f32, positions: &[Vector]) -> Option<u32> {
        let (cx, cy) = self.coords(p);
        let max_ring = (radius * self.inv_cell).ceil() as i32 + 1;
        let mut best: Option<(f32, u32)> = None;
        let radius_sq = radius * radius;
        for ring in 0..=max_ring {
            // Every unit in a farther ring is at least this far away.
            if let Some((best_sq, _)) = best {
                let reach = (ring - 1).max(0) as f32 * self.cell;
                if reach * reach > best_sq {
                    break;
                }
            }
            let (x0, x1, y0, y1) = (cx - ring, cx + ring, cy - ring, cy + ring);
            if x0 < 0 && y0 < 0 && x1 >= self.cols && y1 >= self.rows {
                break;
            }
            let mut scan = |x: i32, y: i32| {
                for &unit in self.cell(x, y) {
                    let d = positions[unit as usize] - p;
                    let d_sq = d.x * d.x + d.y * d.y;
                    let better = match best {
                        None => true,
                        Some((b, u)) => d_sq < b || (d_sq == b && unit < u),
                    };
                    if d_sq <= radius_sq && better {
                        best = Some((d_sq, unit));
                    }
                }
            };
            for y in y0.max(0)..=y1.min(self.rows - 1) {
                if y == y0 || y == y1 {
                    for x in x0.max(0)..=x1.min(self.cols - 1) {
                        scan(x, y);
                    }
                } else {
                    // Inside the ring only its two border cells are new.
                    if x0 >= 0 {
                        scan(x0, y);
                    }
                    if x1 < self.cols && x1 != x0 {
                        scan(x1, y);
                    }
                }
            }
        }
        best.map(|(_, unit)| unit)
    }

    /// Whether any unit in the cells overlapping the box `low..high` satisfies `pred` (which
    /// does its own distance test).
    pub fn any_in(&self, low: Vector, high: Vector, mut pred: impl FnMut(u32) -> bool) -> bool {
        let (x0, y0) = self.coords(low);
        let (x1, y1) = self.coords(high);
        for y in y0..=y1 {
            for x in x0..=x1 {
                if self.cell(x, y).iter().any(|&unit| pred(unit)) {
                    return true;
                }
            }
        }
        false
    }

    /// Bytes held, for memory accounting.
    pub fn bytes(&self) -> usize {
        (self.starts.capacity() + self.items.capacity() + self.next.capacity()) * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute(p: Vector, radius: f32, units: &[Vector]) -> Option<u32> {
        let mut best: Option<(f32, u32)> = None;
        for (i, u) in units.iter().enumerate() {
            let d = (*u - p).length_squared();
            if d <= radius * radius && best.is_none_or(|(b, _)| d < b) {
                best = Some((d, i as u32));
            }
        }
        best.map(|(_, i)| i)
    }

    #[test]
    fn finds_the_same_nearest_unit_as_a_scan() {
        // A deterministic scatter, some of it outside the grid.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 10_000) as f32 / 10.0 - 100.0
        };
        let units: Vec<Vector> = (0..500).map(|_| Vector::new(next(), next())).collect();
        let mut grid = Grid::new(Vector::new(-80.0, -80.0), Vector::new(800.0, 800.0), 8.0);
        grid.rebuild(units.iter().enumerate().map(|(i, p)| (i as u32, *p)));
        for _ in 0..300 {
            let p = Vector::new(next(), next());
            for radius in [5.0, 30.0, 200.0, 2_000.0] {
                let want = brute(p, radius, &units).map(|i| (units[i as usize] - p).length());
                let got = grid
                    .nearest(p, radius, &units)
                    .map(|i| (units[i as usize] - p).length());
                assert_eq!(got, want, "at {p:?} within {radius}");
            }
        }
    }
}
