//! Delivery estimates with Amazon Location's resourceless APIs: Geocode (geo-places)
//! locates the depot once and each address, CalculateRoutes (geo-routes) drives there.

use async_trait::async_trait;
use aws_sdk_geoplaces::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_geoplaces::types::GeocodeResultItem;
use ewf_domain::ports::Estimator;
use ewf_domain::{Address, Estimate, Money, ServiceError};
use tokio::sync::OnceCell;

/// A position as Amazon Location writes it: [longitude, latitude].
type Position = Vec<f64>;

/// Below this overall match score, Geocode's best result is a guess at another place
/// (a street of the same name elsewhere): the address counts as not found.
const MIN_MATCH_SCORE: f64 = 0.6;

/// Where a Geocode result is, if it matches the query well enough to deliver there.
fn position_of_match(place: &GeocodeResultItem) -> Option<Position> {
    let matched = place
        .match_scores()
        .is_none_or(|scores| scores.overall() >= MIN_MATCH_SCORE);
    let position = place.position();
    (matched && position.len() == 2).then(|| position.to_vec())
}

pub struct LocationEstimator {
    places: aws_sdk_geoplaces::Client,
    routes: aws_sdk_georoutes::Client,
    depot: Address,
    depot_position: OnceCell<Position>,
}

impl LocationEstimator {
    pub fn new(
        places: aws_sdk_geoplaces::Client,
        routes: aws_sdk_georoutes::Client,
        depot: Address,
    ) -> Self {
        Self {
            places,
            routes,
            depot,
            depot_position: OnceCell::new(),
        }
    }

    /// The best match for an address; `None` if nothing matches.
    async fn locate(&self, address: &Address) -> Result<Option<Position>, ServiceError> {
        let result = self
            .places
            .geocode()
            .query_text(address.as_str())
            .max_results(1)
            .send()
            .await;
        // A query Amazon Location cannot read is an address it cannot locate.
        let Some(output) = unless_invalid(result, "Geocode")? else {
            return Ok(None);
        };
        Ok(output.result_items().first().and_then(position_of_match))
    }

    /// The depot's position, located on first use.
    async fn depot(&self) -> Result<&Position, ServiceError> {
        self.depot_position
            .get_or_try_init(|| async {
                self.locate(&self.depot).await?.ok_or_else(|| {
                    ServiceError::Misconfigured(format!(
                        "the depot address {:?} cannot be located; check DELIVERY_ORIGIN_ADDRESS",
                        self.depot.as_str()
                    ))
                })
            })
            .await
    }

    /// Metres and seconds by car; `None` if there is no route.
    async fn drive(
        &self,
        from: &Position,
        to: &Position,
    ) -> Result<Option<(i64, i64)>, ServiceError> {
        let result = self
            .routes
            .calculate_routes()
            .set_origin(Some(from.clone()))
            .set_destination(Some(to.clone()))
            .send()
            .await;
        // Positions Amazon Location will not route between (across a sea, too far):
        // the address cannot be reached, and asking again will not change that.
        let Some(output) = unless_invalid(result, "CalculateRoutes")? else {
            return Ok(None);
        };
        let summary = output.routes().first().and_then(|route| route.summary());
        Ok(summary.map(|summary| (summary.distance(), summary.duration())))
    }
}

/// A request's output; `None` when Amazon Location refuses the request as invalid, and
/// for any other failure an error worth a retry.
fn unless_invalid<T, E, R>(
    result: Result<T, SdkError<E, R>>,
    request: &str,
) -> Result<Option<T>, ServiceError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match result {
        Ok(output) => Ok(Some(output)),
        Err(err) if err.code() == Some("ValidationException") => Ok(None),
        Err(err) => Err(ServiceError::Unavailable(format!(
            "Amazon Location {request} failed: {}",
            DisplayErrorContext(err)
        ))),
    }
}

/// The estimate for a route of `metres` taking `seconds`.
fn estimate(origin: &Address, address: &Address, metres: i64, seconds: i64) -> Estimate {
    let duration = u64::try_from(seconds).unwrap_or_default();
    Estimate {
        origin: origin.to_string(),
        address: address.clone(),
        distance: Money::new(metres, 3).round_dp(2),
        duration,
        price: Estimate::price_for(duration),
    }
}

#[async_trait]
impl Estimator for LocationEstimator {
    async fn estimate(&self, address: &Address) -> Result<Estimate, ServiceError> {
        let unknown = || ServiceError::not_found("Address", address);
        let from = self.depot().await?;
        let to = self.locate(address).await?.ok_or_else(unknown)?;
        let (metres, seconds) = self.drive(from, &to).await?.ok_or_else(unknown)?;
        Ok(estimate(&self.depot, address, metres, seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_becomes_kilometres_with_two_decimals_and_a_price() {
        let depot = Address::parse("60 Holborn Viaduct, London EC1A 2FD, UK").unwrap();
        let palace = Address::parse("Buckingham Palace, London SW1A 1AA, UK").unwrap();
        let estimate = estimate(&depot, &palace, 4_567, 1_234);
        assert_eq!(estimate.distance.to_string(), "4.57");
        assert_eq!(
            (estimate.duration, estimate.price.to_string()),
            (1_234, "12.34".to_owned())
        );
        assert_eq!(estimate.origin, depot.as_str());
    }

    #[test]
    fn a_poor_match_is_no_location() {
        let place = |score: Option<f64>| {
            let mut place = GeocodeResultItem::builder()
                .place_id("p-1")
                .place_type(aws_sdk_geoplaces::types::PlaceType::PointAddress)
                .title("Great Russell St")
                .position(-0.1269)
                .position(51.5194);
            if let Some(score) = score {
                place = place.match_scores(
                    aws_sdk_geoplaces::types::MatchScoreDetails::builder()
                        .overall(score)
                        .build(),
                );
            }
            place.build().unwrap()
        };
        assert_eq!(
            position_of_match(&place(Some(0.95))),
            Some(vec![-0.1269, 51.5194])
        );
        assert_eq!(
            position_of_match(&place(None)),
            Some(vec![-0.1269, 51.5194])
        );
        assert_eq!(position_of_match(&place(Some(0.3))), None);
    }
}
