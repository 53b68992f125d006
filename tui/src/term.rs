//! The terminal: raw mode and the alternate screen while the view runs, restored on quit,
//! on an error and on a panic (ratatui's `init` installs the panic hook); Ctrl-C arrives
//! as a key in raw mode and quits like `q`.

use std::io;
use std::time::{Duration, Instant};

use crossterm::event::{self, Event};
use ratatui::DefaultTerminal;

use crate::app::{App, Choice, Menu};
use crate::ui;

/// Frames per second at most.
pub const FPS: u32 = 30;

/// The terminal, set up for the view; restored when dropped.
pub struct Tui {
    term: DefaultTerminal,
}

impl Tui {
    /// Enters raw mode and the alternate screen.
    pub fn start() -> io::Result<Tui> {
        let term = ratatui::try_init()?;
        Ok(Tui { term })
    }

    /// Shows the lesson menu until a choice is made.
    pub fn menu(&mut self) -> io::Result<Choice> {
        let mut menu = Menu::default();
        loop {
            self.term
                .draw(|f| ui::render_menu(&menu, f.area(), f.buffer_mut()))?;
            if let Event::Key(k) = event::read()? {
                if let Some(c) = menu.key(k) {
                    return Ok(c);
                }
            }
        }
    }

    /// Runs `app` until it quits: at most [`FPS`] frames a second, keys handled as they
    /// come, the run moved on by the wall time that passed.
    pub fn run(&mut self, app: &mut App) -> io::Result<()> {
        let frame = Duration::from_secs(1) / FPS;
        let mut last = Instant::now();
        while !app.quit {
            self.term.draw(|f| ui::draw(f, app))?;
            let deadline = last + frame;
            while !app.quit {
                let left = deadline.saturating_duration_since(Instant::now());
                if !event::poll(left)? {
                    break;
                }
                match event::read()? {
                    Event::Key(k) => {
                        app.key(k);
                        // Show what a key did at once.
                        self.term.draw(|f| ui::draw(f, app))?;
                    }
                    Event::Resize(..) => self.term.draw(|f| ui::draw(f, app)).map(|_| ())?,
                    _ => {}
                }
            }
            let now = Instant::now();
            app.tick(now - last);
            last = now;
        }
        app.stop();
        Ok(())
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        ratatui::restore();
    }
}
