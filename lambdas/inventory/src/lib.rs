//! The inventory service: describes items and moves their stock, for the HTTP API
//! (manual actions), the choreography (events) and the workflow (direct invocations).

use async_trait::async_trait;
use ewf_domain::entry::{Decode, EventInput, Function, HttpRequest, Input, Invocation, Reply};
use ewf_domain::events::{BusEvent, DetailType, FunctionName};
use ewf_domain::ports::{Bus, InventoryStore, Ledger, Step};
use ewf_domain::step::{self, Refusal};
use ewf_domain::{
    Failure, Item, ItemId, OrderDetail, OrderStatus, RecordedError, ServiceError, StockMove,
};
use ewf_domain::{saga, workflow_errors};
use std::sync::Arc;

const SOURCE: FunctionName = FunctionName::Inventory;

const MOVES: [StockMove; 4] = [
    StockMove::Reserve,
    StockMove::Unreserve,
    StockMove::Remove,
    StockMove::Return,
];

/// The name of a stock move: its action in routes and invocations, and its step.
fn move_name(movement: StockMove) -> &'static str {
    match movement {
        StockMove::Reserve => "reserve",
        StockMove::Unreserve => "unreserve",
        StockMove::Remove => "remove",
        StockMove::Return => "return",
    }
}

/// What is asked of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Describe,
    Move(StockMove),
}

impl Action {
    pub fn parse(name: &str) -> Result<Self, ServiceError> {
        if name == "describe" {
            return Ok(Self::Describe);
        }
        MOVES
            .into_iter()
            .find(|movement| move_name(*movement) == name)
            .map(Self::Move)
            .ok_or_else(|| ServiceError::unknown_action(name))
    }

    /// The action an incoming event asks for, and the event that announces it done,
    /// if this service handles the event.
    fn reacting_to(detail_type: DetailType) -> Option<(Self, DetailType)> {
        use DetailType::*;
        let action = match detail_type {
            OrderCreated => Self::Move(StockMove::Reserve),
            ItemReserved => Self::Describe,
            PaymentMade => Self::Move(StockMove::Remove),
            PaymentFailed
            | ErrorItemDescribed
            | ErrorCustomerDescribed
            | ErrorDeliveryEstimated
            | ErrorPaymentMade => Self::Move(StockMove::Unreserve),
            // A failure after the payment: the item goes back to the stock, released or
            // returned (whichever the order's steps did), and ItemReturned has the
            // payment refunded next.
            ErrorItemRemoved | ErrorDeliveryStarted | OrderTimedOut => {
                return Some((Self::Move(StockMove::Unreserve), ItemReturned));
            }
            OrderCanceled => Self::Move(StockMove::Return),
            _ => return None,
        };
        Some((action, action.announcement()))
    }

    /// The event announcing that the action was done.
    fn announcement(self) -> DetailType {
        match self {
            Self::Describe => DetailType::ItemDescribed,
            Self::Move(StockMove::Reserve) => DetailType::ItemReserved,
            Self::Move(StockMove::Unreserve) => DetailType::ItemUnreserved,
            Self::Move(StockMove::Remove) => DetailType::ItemRemoved,
            Self::Move(StockMove::Return) => DetailType::ItemReturned,
        }
    }
}

/// One request to the inventory service.
// A command lives for one invocation and is never stored in bulk: boxing the order
// detail would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// `GET /inventory/{action}/{itemId}`: a manual action, not a saga step, so every
    /// call acts anew.
    Manual { action: Action, item_id: ItemId },
    /// A saga step for an order: from an event (answered by publishing events) or from
    /// the workflow (answered with the order detail).
    Order {
        action: Action,
        order: OrderDetail,
        answer: Answer,
    },
}

/// How a saga step is answered: with an event (the choreography) or with the order
/// detail (the workflow).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Announce(DetailType),
    Reply,
}

impl Decode for Command {
    fn from_http(request: &HttpRequest) -> Result<Self, ServiceError> {
        let action = Action::parse(request.action("inventory")?)?;
        let [item_id] = request.params([ItemId::FIELD])?;
        Ok(Self::Manual {
            action,
            item_id: item_id.parse()?,
        })
    }

    fn from_event(event: &EventInput) -> Result<Self, ServiceError> {
        let (action, announcement) =
            Action::reacting_to(event.known_type()?).ok_or_else(|| event.not_handled_by(SOURCE))?;
        Ok(Self::Order {
            action,
            order: event.parse_detail()?,
            answer: Answer::Announce(announcement),
        })
    }

    fn from_invoke(invocation: Invocation) -> Result<Self, ServiceError> {
        Ok(Self::Order {
            action: Action::parse(invocation.action()?)?,
            order: invocation.order()?,
            answer: Answer::Reply,
        })
    }
}

/// Why a stock move was refused.
fn refusal_error(movement: StockMove, item_id: &ItemId, refusal: Refusal) -> ServiceError {
    match (refusal, movement) {
        (Refusal::NotFound, _) => ServiceError::not_found("Item", item_id),
        (Refusal::ConditionFailed, StockMove::Reserve) => ServiceError::conflict(
            workflow_errors::ITEM_NOT_AVAILABLE,
            format!("item {item_id} is not available"),
        ),
        (Refusal::ConditionFailed, _) => ServiceError::conflict(
            "NothingReserved",
            format!("item {item_id} has nothing reserved"),
        ),
    }
}

pub struct InventoryService {
    store: Arc<dyn InventoryStore>,
    ledger: Arc<dyn Ledger>,
    bus: Arc<dyn Bus>,
}

impl InventoryService {
    pub fn new(store: Arc<dyn InventoryStore>, ledger: Arc<dyn Ledger>, bus: Arc<dyn Bus>) -> Self {
        Self { store, ledger, bus }
    }

    pub async fn execute(&self, command: Command) -> Result<Reply, ServiceError> {
        match command {
            Command::Manual {
                action: Action::Describe,
                item_id,
            } => Ok(Reply::ok(self.item(&item_id).await?)),
            Command::Manual {
                action: Action::Move(movement),
                item_id,
            } => match self.store.apply(&item_id, movement, None).await {
                Ok(item) => Ok(Reply::ok(item)),
                Err(err) => Err(refusal_error(movement, &item_id, Refusal::of(err)?)),
            },
            Command::Order {
                action: Action::Describe,
                mut order,
                answer,
            } => {
                order.item = Some(self.item(&order.item_id).await?);
                match answer {
                    Answer::Announce(announcement) => {
                        let described = BusEvent::new(SOURCE, announcement, &order);
                        step::announce(&*self.bus, vec![described]).await
                    }
                    Answer::Reply => Ok(Reply::ok(order)),
                }
            }
            Command::Order {
                action: Action::Move(movement),
                order,
                answer,
            } => {
                let moved = self.move_for_order(movement, &order).await?;
                match answer {
                    Answer::Announce(announcement) => {
                        let events = move_events(movement, announcement, &order, moved);
                        step::announce(&*self.bus, events).await
                    }
                    Answer::Reply => Reply::outcome(compensated(movement, moved).map(|()| order)),
                }
            }
        }
    }

    async fn item(&self, id: &ItemId) -> Result<Item, ServiceError> {
        self.store
            .get(id)
            .await?
            .ok_or_else(|| ServiceError::not_found("Item", id))
    }

    /// Performs the order's stock move as its saga step. A compensation undoes only
    /// what the order's own steps did, so it first closes the steps it would undo.
    async fn move_for_order(
        &self,
        movement: StockMove,
        order: &OrderDetail,
    ) -> Result<Moved, ServiceError> {
        let (undone, consumed) = match movement {
            StockMove::Unreserve => (StockMove::Reserve, Some(StockMove::Remove)),
            StockMove::Return => (StockMove::Remove, None),
            StockMove::Reserve | StockMove::Remove => return self.perform(movement, order).await,
        };
        let held = self.close(order, undone).await? == Some(Ok(()));
        if !held {
            tracing::info!(order = %order.order_id, ?movement, "nothing of the order's to undo");
            return Ok(Ok(()));
        }
        // A reservation that was sold (its removal ran, though its caller may never have
        // heard so) is released by returning the item to the stock.
        let sold = match consumed {
            Some(consumed) => self.close(order, consumed).await? == Some(Ok(())),
            None => false,
        };
        let movement = if sold { StockMove::Return } else { movement };
        self.perform(movement, order).await
    }

    /// The order's step `movement`, performed once.
    async fn perform(
        &self,
        movement: StockMove,
        order: &OrderDetail,
    ) -> Result<Moved, ServiceError> {
        let item_id = &order.item_id;
        step::perform(
            &*self.ledger,
            Step::key(SOURCE, &order.order_id, move_name(movement)),
            || Ok(()),
            |step| async move {
                self.store
                    .apply(item_id, movement, Some(&step))
                    .await
                    .map(|_moved| ())
            },
            |refusal| Err(refusal_error(movement, item_id, refusal).into()),
        )
        .await
    }

    /// Closes the order's step `movement` (see [`step::close`]); its outcome if it ran.
    async fn close(
        &self,
        order: &OrderDetail,
        movement: StockMove,
    ) -> Result<Option<Moved>, ServiceError> {
        let closed: Moved = Err(ServiceError::conflict(
            "OrderCompensated",
            format!(
                "order {} was compensated before its item could be moved ({})",
                order.order_id,
                move_name(movement)
            ),
        )
        .into());
        step::close(
            &*self.ledger,
            Step::key(SOURCE, &order.order_id, move_name(movement)),
            &closed,
        )
        .await
    }
}

/// What an order's stock move came to, as its step records it: the stock moved, or
/// why not. Events and replies are made from it, so a replay makes the same ones.
type Moved = Result<(), RecordedError>;

/// A compensation that finds nothing to undo is complete (the item is gone, or holds
/// nothing of the order's): the workflow goes on as the choreography does.
fn compensated(movement: StockMove, moved: Moved) -> Moved {
    match (movement, moved) {
        (StockMove::Unreserve | StockMove::Return, Err(refused)) => {
            tracing::warn!(reason = %refused.message, ?movement, "nothing to undo; the compensation goes on");
            Ok(())
        }
        (_, moved) => moved,
    }
}

/// What the choreography hears of an order's stock move. A refused reservation ends
/// the order. A refused release still completes the compensation, so that the order
/// reaches its final status. A refused removal (the reservation was released by hand)
/// fails the paid order: ErrorItemRemoved has what is left of the reservation released
/// and the payment refunded.
fn move_events(
    movement: StockMove,
    announcement: DetailType,
    order: &OrderDetail,
    moved: Moved,
) -> Vec<BusEvent> {
    let announced = || vec![BusEvent::new(SOURCE, announcement, order)];
    let refused = match compensated(movement, moved) {
        Ok(()) => return announced(),
        Err(refused) => refused,
    };
    match movement {
        StockMove::Reserve => {
            let mut failed = order.clone();
            failed.failure = Some(Failure {
                status: OrderStatus::ItemNotAvailable,
                reason: refused.message,
            });
            vec![BusEvent::new(SOURCE, DetailType::ItemNotAvailable, &failed)]
        }
        // A refused removal (the only refusal left: compensations complete).
        StockMove::Remove | StockMove::Unreserve | StockMove::Return => {
            let mut failed = order.clone();
            failed.failure = Some(Failure {
                status: OrderStatus::Failed,
                reason: refused.message,
            });
            vec![BusEvent::new(SOURCE, DetailType::ErrorItemRemoved, &failed)]
        }
    }
}

#[async_trait]
impl Function for InventoryService {
    async fn handle(&self, input: Input) -> Result<Reply, ServiceError> {
        saga::handle(&*self.bus, SOURCE, input, |command: Command| {
            self.execute(command)
        })
        .await
    }
}
